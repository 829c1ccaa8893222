"""The application's services, built once by the composition root (``app.py``) and handed to every adapter."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.patients import Demographics
from ..store.interface import Store
from ..store.sql import SqlStore
from .auditing import Auditor
from .cpis import CpisService
from .fgm import FgmService


@dataclass
class Services:
    store: SqlStore  # its life (closed at shutdown) and health
    fgm: FgmService
    auditor: Auditor
    cpis: CpisService
    demographics: Demographics | None = None  # the configured source ([pds] or the local table)
    serving: Store | None = None  # the store as the services use it (app.build_services): the store if None
