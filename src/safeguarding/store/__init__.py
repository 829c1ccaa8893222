"""Storage: one interface (``interface.Store``), SQL implementations for SQLite and PostgreSQL."""
