"""The domain core: children, indicators and the rules about them.

Nothing in this package knows about HTTP, FHIR versions or storage technology.
"""
