"""Create or refresh a sandbox data dir, and describe it."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..demographics import load_patients
from ..domain.clock import Clock, SystemClock, iso_instant, uk_today
from ..domain.cpis import AuthorityContact, Plan, PlanKey, Provenance
from ..domain.fgm import Actor, Indicator, IndicatorStatus, RemovalReason
from ..fileutil import write_private
from ..security import certs
from ..security.keys import generate_signing_key
from ..security.registry import save_registry
from ..settings import SANDBOX_AUDIENCE, SANDBOX_ISSUER, SANDBOX_SERVICE_ASID, Layout, Settings, sandbox_settings
from ..store.sql import SqlStore, make_engine, upgrade_schema
from .catalogue import described
from .data import AUTHORITIES, NOT_IN_DEMOGRAPHICS, PATIENTS, REMOVED_INDICATOR_ID, sandbox_patients
from .scenarios import slow_seconds

ALL_FGM_DSTU2 = [
    "urn:nhs:names:services:clinicals-sync:FGMQuery_2_0",
    "urn:nhs:names:services:clinicals-sync:FGMCreate_1_0",
    "urn:nhs:names:services:clinicals-sync:FGMDelete_1_0",
]

# The example ASIDs of the NHS guide: 047192794544 calls, 990101234567 is the service.
SYSTEMS: list[dict[str, Any]] = [
    {"name": "gp-system", "asid": "047192794544", "ods": "B86022", "kind": "clinical-system",
     "interactions": ALL_FGM_DSTU2},
    {"name": "query-only-system", "asid": "200000000117", "ods": "RR8", "kind": "clinical-system",
     "interactions": ALL_FGM_DSTU2[:1]},
] + [
    # CP-IS local authorities: the kind is what counts (they upload, and read their notification feed).
    {"name": authority.key, "asid": authority.asid, "ods": authority.ods, "kind": "local-authority",
     "interactions": []}
    for authority in AUTHORITIES
]

# The sandbox users' national RBAC job roles (role_name as CIS2 writes it) and organisations.
_ROLE = '"Clinical":"Clinical Provision":'
_HOSPITAL = "Sandbox City Hospital NHS Trust"
USERS: list[dict[str, Any]] = [
    {"purpose": "clinician who may query, create and remove FGM indicators", "user_id": "555021935107",
     "role_profile_id": "555021936108", "org": "RR8", "activities": ["B0370", "B0380"], "role_code": "R8000",
     "name": "Dr Amy Sandbox", "role_name": _ROLE + '"Clinical Practitioner Access Role"', "org_name": _HOSPITAL},
    {"purpose": "clinician who may query only", "user_id": "555021937109", "role_profile_id": "555021938100",
     "org": "RR8", "activities": ["B0370"], "role_code": "R8001", "name": "Nurse Ben Sandbox",
     "role_name": _ROLE + '"Nurse Access Role"', "org_name": _HOSPITAL},
    {"purpose": "user with no FGM activity (refused)", "user_id": "555021939101",
     "role_profile_id": "555021940102", "org": "RR8", "activities": ["B0107"], "role_code": "R8010",
     "name": "Clerk Cal Sandbox", "role_name": '"Admin & Clerical":"Admin & Clerical":"Clerical Access Role"',
     "org_name": _HOSPITAL},
    {"purpose": "CP-IS: emergency department clinician (unscheduled care, B0107: accesses are recorded and "
                "notified)", "user_id": "555021941103", "role_profile_id": "555021942104", "org": "RR8",
     "activities": ["B0107"], "role_code": "R8000", "name": "Dr Erin Sandbox",
     "role_name": _ROLE + '"Clinical Practitioner Access Role"', "org_name": _HOSPITAL},
    {"purpose": "CP-IS: GP (scheduled care, B0170 only: a silent read, never recorded)", "user_id": "555021943105",
     "role_profile_id": "555021944106", "org": "B86022", "activities": ["B0170"], "role_code": "R0260",
     "name": "Dr Gus Sandbox", "role_name": _ROLE + '"General Medical Practitioner"',
     "org_name": "Sandbox Medical Practice"},
]


SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


def ensure_sandbox(data_dir: Path, *, host: str = "127.0.0.1", port: int = 8443, database_url: str | None = None,
                   clock: Clock | None = None, tls_names: tuple[str, ...] = ()) -> Settings:
    """Everything the sandbox needs, created where missing; patients refreshed for today."""
    layout = Layout(data_dir.resolve())
    layout.root.mkdir(parents=True, exist_ok=True)
    if not layout.audit_key.exists():
        write_private(layout.audit_key, secrets.token_bytes(32))
    if not layout.signing_key.exists():
        generate_signing_key(layout.signing_key, layout.jwks)
    ca = certs.CertPair(layout.tls / "ca.pem", layout.tls / "ca.key")
    if not ca.cert.exists():
        certs.create_ca(layout.tls)
    server = certs.CertPair(layout.tls / "server.pem", layout.tls / "server.key")
    names = tuple(dict.fromkeys((*SERVER_NAMES, *tls_names)))
    if not server.cert.exists() or (tls_names and set(certs.server_names(server.cert)) != set(names)):
        certs.issue(ca, server, common_name="localhost", server_names=names)
    for system in SYSTEMS:
        pair = system_cert(layout, system["asid"])
        if not pair.cert.exists():
            certs.issue(ca, pair, common_name=system["asid"], org=system["ods"], client=True)
    # The sandbox's own systems are refreshed; systems an operator added (`safeguarding systems add`) stay.
    sandbox_asids = {s["asid"] for s in SYSTEMS}
    added = [entry for entry in _registry_entries(layout.registry) if entry.get("asid") not in sandbox_asids]
    save_registry(layout.registry, [
        {k: v for k, v in s.items() if k != "name"}
        | {"cert_sha256": certs.pem_fingerprint(system_cert(layout, s["asid"]).cert)}
        for s in SYSTEMS
    ] + added)
    settings = sandbox_settings(layout.root, host=host, port=port, database_url=database_url)
    seed(settings, clock or SystemClock())
    return settings


def reset(data_dir: Path, database_url: str | None = None) -> Settings:
    """Back to the shipped data set: the database emptied and seeded again. Keys, certificates and the
    systems an operator added stay (tokens and certificates issued before still work)."""
    from sqlalchemy import MetaData

    layout = Layout(data_dir.resolve())
    settings = sandbox_settings(layout.root, database_url=database_url)
    if settings.database_url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{layout.database}{suffix}").unlink(missing_ok=True)
    else:
        engine = make_engine(settings.database_url)
        try:
            with engine.begin() as conn:
                tables = MetaData()
                tables.reflect(conn)
                tables.drop_all(conn)
        finally:
            engine.dispose()
    seed(settings, SystemClock())
    return settings


ADDRESS_FILE = "server.json"  # where a sandbox server records the address it serves on, for `sandbox describe`


def record_address(data_dir: Path, host: str, port: int) -> None:
    """Record the address a sandbox server is about to serve on (replacing the last one, atomically)."""
    path = Path(data_dir) / ADDRESS_FILE
    spare = path.with_suffix(".json.tmp")
    spare.write_text(json.dumps({"host": host, "port": port}) + "\n")
    spare.replace(path)


def recorded_address(data_dir: Path) -> tuple[str, int] | None:
    """The address the sandbox server last started on, if it recorded one that can be read."""
    try:
        recorded = json.loads((Path(data_dir) / ADDRESS_FILE).read_text())
        host, port = recorded["host"], recorded["port"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (host, port) if isinstance(host, str) and isinstance(port, int) else None


def _registry_entries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = json.loads(path.read_text()).get("systems", [])
    return [entry for entry in entries if isinstance(entry, dict)]


def system_cert(layout: Layout, asid: str) -> certs.CertPair:
    return certs.CertPair(layout.systems / f"{asid}.pem", layout.systems / f"{asid}.key")


def seed(settings: Settings, clock: Clock) -> None:
    engine = make_engine(settings.database_url)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()
    store = SqlStore.open(settings.database_url, settings.audit_key.value)
    try:
        today = uk_today(clock)
        load_patients(store, sandbox_patients(today))
        sandbox_actor = Actor(user_id="sandbox", org_code="X26")
        for entry in PATIENTS:
            if entry.indicator_assessed_days_ago is None or store.read_history(entry.nhs_number):
                continue  # seeded once: what users do to sandbox indicators afterwards stays done
            with store.transaction() as tx:
                indicator = Indicator(
                    id=REMOVED_INDICATOR_ID if entry.indicator_removed else str(uuid.uuid4()),
                    nhs_number=entry.nhs_number,
                    assessment_date=today - timedelta(days=entry.indicator_assessed_days_ago),
                    status=IndicatorStatus.ACTIVE,
                    created_at=iso_instant(clock.now()),
                    created_by=sandbox_actor,
                )
                tx.insert_indicator(indicator)
                if entry.indicator_removed:
                    tx.save_removal(indicator.removed(iso_instant(clock.now()), sandbox_actor,
                                                      RemovalReason.HAS_HAD_FGM, IndicatorStatus.INACTIVE))
        _seed_plans(store, clock)
    finally:
        store.close()


def _seed_plans(store: SqlStore, clock: Clock) -> None:
    """The CP-IS plans of the sandbox patients, each seeded once (its key not yet held)."""
    today, now = uk_today(clock), iso_instant(clock.now())
    authorities = {a.key: a for a in AUTHORITIES}
    for entry in PATIENTS:
        held = {p.key for p in store.read_plans(entry.nhs_number)} if entry.plans else set()
        for seeded in entry.plans:
            authority = authorities[seeded.authority]
            key = PlanKey(authority.ods, entry.nhs_number, seeded.plan_type)
            end = today + timedelta(days=seeded.ends_in_days) if seeded.ends_in_days is not None else None
            if key in held:
                if seeded.refreshed:
                    _refresh_end(store, key, end, now)
                continue
            with store.transaction() as tx:
                tx.insert_plan(Plan(
                    id=str(uuid.uuid4()), key=key, start=today - timedelta(days=seeded.started_days_ago), end=end,
                    contact=AuthorityContact(authority.name, authority.office_phone, authority.emergency_phone),
                    created_at=now, changed=Provenance(now, authority.asid, "sandbox"),
                    withdrawn_at=now if seeded.withdrawn else None,
                ))


def _refresh_end(store: SqlStore, key: PlanKey, end: date | None, now: str) -> None:
    """A scenario plan's end date kept where its purpose says (e.g. "ends today"), as the sandbox."""
    with store.transaction() as tx:
        plan = tx.plan_for_update(key)
        if plan is not None and plan.end != end and not plan.withdrawn:
            tx.update_plan(replace(plan, end=end, version=plan.version + 1,
                                   changed=Provenance(now, plan.changed.by, "sandbox")))


def describe(settings: Settings) -> dict[str, Any]:
    layout = settings.layout
    return {
        "base_url": settings.base_url,
        "fgm_r4_base": f"{settings.base_url}/fgm/FHIR/R4",
        "cpis_r4_base": f"{settings.base_url}/cpis/FHIR/R4",
        "service_asid": SANDBOX_SERVICE_ASID,
        "ca": str(layout.tls / "ca.pem"),
        "database_url": settings.database_url if settings.database_url.startswith("sqlite") else "(postgresql)",
        "token": {
            "issuer": SANDBOX_ISSUER,
            "audience": SANDBOX_AUDIENCE,
            "jwks": str(layout.jwks),
            "signing_key": str(layout.signing_key),
        },
        "systems": [
            {
                "name": s["name"],
                "asid": s["asid"],
                "ods": s["ods"],
                "kind": s["kind"],
                "interactions": s["interactions"],
                "cert": str(system_cert(layout, s["asid"]).cert),
                "key": str(system_cert(layout, s["asid"]).key),
            }
            for s in SYSTEMS
        ],
        "users": USERS,
        "authorities": [
            {"key": a.key, "name": a.name, "asid": a.asid, "ods": a.ods, "office_phone": a.office_phone,
             "emergency_phone": a.emergency_phone}
            for a in AUTHORITIES
        ],
        "patients": [
            {"key": p.key, "nhs_number": p.nhs_number, "purpose": p.purpose,
             "gender": p.gender.value if p.gender else None, "verified": p.verified, "security": p.security.value,
             "has_indicator_at_creation": p.indicator_assessed_days_ago is not None,
             "plans_at_creation": [
                 {"authority": next(a.ods for a in AUTHORITIES if a.key == plan.authority),
                  "plan_type": plan.plan_type.value, "state": plan.state}
                 for plan in p.plans
             ]}
            for p in PATIENTS
        ] + [{"key": "not-in-demographics", "nhs_number": NOT_IN_DEMOGRAPHICS,
              "purpose": "valid check digit, no demographics: refused as not traced", "gender": None,
              "verified": False, "security": "U", "has_indicator_at_creation": False, "plans_at_creation": []}],
        "scenarios": described(),
        "slow_answer_seconds": slow_seconds(),
    }
