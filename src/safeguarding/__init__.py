"""safeguarding: NHS England's safeguarding information-sharing services (FGM-IS, CP-IS)."""

__version__ = "0.1.0"
