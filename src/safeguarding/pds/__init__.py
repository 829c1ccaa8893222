"""The NHS Personal Demographics Service (PDS FHIR R4) behind ``domain.patients.Demographics``.

``client.PdsDemographics`` reads ``GET {url}/Patient/{nhs_number}`` with application-restricted access
(``auth``: a signed-JWT client assertion, RFC 7523) and maps the record as ``demographics.patient_from_pds``
does for the local table. Chosen by the ``[pds]`` table of the configuration (``settings``).
"""
