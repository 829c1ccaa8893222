"""Spine Mini Service Provider (SMSP) mode: the FGM DSTU2 query for local systems, forwarded to the
national service over mutual TLS. It never stores FGM data (SMSP-FGMRI-003)."""
