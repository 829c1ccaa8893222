"""Summarise py-spy collapsed stacks (``--format raw``): where a scenario's server time goes.

    .venv/bin/python bench/profile_summary.py bench/.cache/profiles/sqlite-small-1.txt [--top 25]

Prints the share of samples under each cost centre (inclusive: a sample counts for every centre
whose frame is on its stack), then the top frames by inclusive and by self share.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Cost centres: a name and a pattern matched against each frame ("function (module/file.py)").
CENTRES = [
    ("request pipeline (worker thread)", r"Endpoint\._serve "),
    ("  JWT verification (all)", r"TokenVerifier\.verify "),
    ("    RSA signature check", r"RSAAlgorithm\.verify |PSSAlgorithm\.verify "),
    ("  demographics lookup (own read txn)", r"LocalDemographics\.lookup "),
    ("  store write transaction (all)", r"SqlStore\.transaction "),
    ("    audit append", r"SqlTransaction\.append_audit "),
    ("    COMMIT (fsync)", r"Connection\.commit |_commit_impl |do_commit "),
    ("    BEGIN IMMEDIATE (lock wait)", r"_sqlite_begin "),
    ("  SQL compile (SQLAlchemy)", r"_compile_w_cache |Compiled\.__init__ |SQLCompiler\.__init__ "),
    ("  pool connect/checkout", r"Pool\.connect |_ConnectionFairy\._checkout "),
    ("  new DB connection", r"Pool\._create_connection "),
    ("  FHIR parse (pydantic)", r"parse_resource "),
    ("  DSTU2 codec", r"dstu2/codec\.py"),
    ("  refusal audit (own txn)", r"Auditor\.record "),
    ("event loop (main thread)", r"Server\.serve |run_until_complete |Runner\.run "),
    ("  serialise response (orjson/XML)", r"serialise |render_response "),
    ("  logging", r"Logger\._log |Handler\.emit |JsonFormatter\.format "),
    ("  metrics", r"metrics\.py"),
    ("  thread-pool hop (run_sync)", r"run_sync |run_sync_in_worker_thread "),
    ("  httptools/uvicorn protocol", r"httptools_impl\.py"),
    ("  TLS (ssl module)", r"sslproto\.py|ssl\.py"),
    ("  starlette routing/middleware", r"starlette/routing\.py|SecurityHeaders\.__call__ "),
]


def load(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = tuple(f for f in stack.split(";") if not f.startswith(("Process ", "Thread ")))
        stacks[frames] += int(count)
    return stacks


def _name(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)  # drop line numbers: aggregate per function


def summary(stacks: Counter[tuple[str, ...]], top: int) -> str:
    total = sum(stacks.values()) or 1
    lines = [f"{total} samples"]
    for title, pattern in CENTRES:
        regex = re.compile(pattern)
        hits = sum(n for frames, n in stacks.items() if any(regex.search(f) for f in frames))
        lines.append(f"  {100 * hits / total:5.1f}%  {title}")
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    for frames, n in stacks.items():
        for name in {_name(f) for f in frames}:
            inclusive[name] += n
        if frames:
            leaf[_name(frames[-1])] += n
    lines.append(f"top {top} inclusive (project and library frames):")
    shown = [(f, n) for f, n in inclusive.most_common() if "(threading.py" not in f and "libc" not in f
             and "libpython" not in f][:top]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in shown]
    lines.append(f"top {top} self:")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in leaf.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(f"== {path.name}")
        print(summary(load(path), args.top))


if __name__ == "__main__":
    main()
