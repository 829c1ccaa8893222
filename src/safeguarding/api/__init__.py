"""The HTTP edge: wire formats (R4, DSTU2) as adapters over the application services."""
