"""Security: authentication yields a typed ``Caller``; authorisation is one explicit function."""
