"""The sandbox: a self-contained service with test patients, keys, certificates and systems."""
