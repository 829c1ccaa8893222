"""The clinician web interface, served under ``/web`` by the same process (docs/web.md).

Kept import-free: ``settings`` imports ``web.config``; the routes are imported by ``app`` from
``web.routes``.
"""
