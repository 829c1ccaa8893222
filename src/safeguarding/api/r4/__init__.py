"""FHIR R4 REST adapters."""
