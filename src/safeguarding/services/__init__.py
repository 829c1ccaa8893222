"""Application services: run the domain rules against the store, one audited transaction each."""
