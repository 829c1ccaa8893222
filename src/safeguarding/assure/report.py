"""The assurance report: one client's requests from the audit trail, judged requirement by requirement.

``build`` reads the store (audit trail and demographics) and returns the report as JSON-ready data;
``html`` renders it as one self-contained page in the NHS.UK style (no scripts, no web fonts, no
external links needed to read it offline).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from html import escape
from typing import Any

import orjson

from ..store.interface import Store
from .evidence import EVIDENCED, MISSING, NOT_APPLICABLE, NOT_OBSERVABLE, assess, observed, scenarios_exercised


def build(store: Store, *, system: str | None = None, client_id: str | None = None,
          since: datetime | None = None, care_setting: str | None = None) -> dict[str, Any]:
    if (system is None) == (client_id is None):
        raise ValueError("give a system ASID or a client id")
    since_text = since.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if since else None
    events = []
    for record in store.audit_records():
        event = record.event
        if since_text and event.recorded_at < since_text:
            continue
        if system is not None and event.system_asid != system:
            continue
        if client_id is not None and _client_id(event.wire) != client_id:
            continue
        events.append(event)
    requests = observed(events)
    findings = assess(requests, store.read_patient, care_setting)
    counts = Counter(f.status for f in findings)
    return {
        "client": {"system_asid": system} if system else {"client_id": client_id},
        "since": since_text,
        "care_setting": care_setting,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "requests": len(requests),
        "apis": sorted({o.event.api for o in requests}),
        "outcomes": dict(sorted(Counter(f"{o.event.status} {o.event.outcome}" for o in requests).items())),
        "scenarios_exercised": scenarios_exercised(requests),
        "summary": {status: counts.get(status, 0) for status in (EVIDENCED, MISSING, NOT_OBSERVABLE, NOT_APPLICABLE)},
        "requirements": [f.as_json() for f in findings],
    }


def _client_id(wire: str | None) -> str | None:
    if not wire or '"client_id"' not in wire:
        return None
    value = orjson.loads(wire).get("client_id")
    return value if isinstance(value, str) else None


_STYLE = """
body{margin:0;font-family:Arial,"Helvetica Neue",sans-serif;color:#212b32;background:#f0f4f5;line-height:1.5}
header{background:#005eb8;color:#fff;padding:16px 32px}header h1{margin:0;font-size:1.6rem}
main{max-width:1000px;margin:0 auto;padding:24px 32px}
.card{background:#fff;border:1px solid #d8dde0;padding:16px 24px;margin:0 0 16px}
.card h2{margin:0 0 4px;font-size:1.2rem}.card p{margin:4px 0}
.tag{display:inline-block;padding:2px 8px;font-weight:bold;font-size:.9rem;border:1px solid}
.evidenced{color:#007f3b;background:#cce5d8;border-color:#007f3b}
.missing{color:#8a1538;background:#f7d4d1;border-color:#d5281b}
.not-observable{color:#212b32;background:#e8edee;border-color:#768692}
.not-applicable{color:#4c6272;background:#fff;border-color:#aeb7bd}
.source{color:#4c6272;font-size:.9rem}blockquote{margin:8px 0;padding-left:12px;border-left:4px solid #d8dde0}
table{border-collapse:collapse;background:#fff}td,th{border-bottom:1px solid #d8dde0;padding:4px 12px;text-align:left}
code{font-family:Consolas,monospace;font-size:.9rem}
"""


def html(report: dict[str, Any]) -> str:
    client = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report["client"].items())
    rows = "".join(f"<tr><td>{escape(status)}</td><td>{n}</td></tr>" for status, n in report["summary"].items())
    outcomes = "".join(f"<tr><td><code>{escape(k)}</code></td><td>{n}</td></tr>" for k, n in report["outcomes"].items())
    cards = "".join(_card(item) for item in report["requirements"])
    scenarios = ", ".join(f"<code>{escape(s)}</code>" for s in report["scenarios_exercised"]) or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Assurance report: {escape(client)}</title><style>{_STYLE}</style></head>
<body><header><h1>Integration assurance report</h1><p>{escape(client)}</p></header><main>
<div class="card"><p>{report["requests"]} requests since {escape(report["since"] or "the start of the audit trail")},
to {escape(", ".join(report["apis"]) or "no API")}; generated {escape(report["generated_at"])}.</p>
<table><tr><th>requirements</th><th></th></tr>{rows}</table>
<p>Scenarios exercised: {scenarios}</p>
<table><tr><th>answers received</th><th></th></tr>{outcomes}</table></div>
{cards}
<p class="source">Requirement texts are quoted from the NHS documents named under each. What happens on the client's
screens and in its own storage cannot be seen from the service: those rows are evidenced in the client's own assurance
documents.</p>
</main></body></html>
"""


def _card(item: dict[str, Any]) -> str:
    source = item["source"]
    link = f' <a href="{escape(source["link"])}">{escape(source["link"])}</a>' if source.get("link") else ""
    details = "".join(f"<li>{escape(d)}</li>" for d in item["details"])
    requests = ", ".join(f"<code>{escape(rid)}</code>" for rid in item["requests"])
    return (f'<section class="card" id="{escape(item["id"])}"><h2>{escape(item["id"])} '
            f'<span class="tag {item["status"].replace(" ", "-")}">{escape(item["status"])}</span></h2>'
            f"<blockquote>{escape(item['text'])}</blockquote>"
            f'<p class="source">Source: {escape(source["document"])}, {escape(source["section"])}.{link}</p>'
            f"<p>{escape(item['summary'])}</p>"
            + (f"<ul>{details}</ul>" if details else "")
            + (f"<p>Requests: {requests}</p>" if requests else "")
            + "</section>")
