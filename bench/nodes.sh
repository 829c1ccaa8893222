#!/usr/bin/env bash
# Several nodes (docs/performance.md): N serve processes (one worker each, process i pinned to CPU i) on one kept
# PostgreSQL copy, wrk with 32 connections split between them (unpinned); prints their total req/s.
# usage: bench/nodes.sh N PARAMS SECONDS DATA_DIR DATABASE_URL
# With QUOTA=P in the environment (root, cgroup v1's cpu controller), each node also runs in a cgroup of its own
# capped at P% of one core: "a core of its own" simulated on a host too small for it, with room left for wrk
# and PostgreSQL (docs/performance.md, "Several nodes").

cd "$(dirname "$0")/.."
D=$4
URL=$5
N=$1; P=$2; S=$3; PIDS=(); PORTS=(); T=${TMPDIR:-/tmp}
for i in $(seq 0 $((N-1))); do
  PORT=$((23000 + RANDOM % 5000)); PORTS+=($PORT)
  if [ -n "$QUOTA" ]; then
    G=/sys/fs/cgroup/cpu/sgbench-node$i; mkdir -p $G; echo 100000 > $G/cpu.cfs_period_us; echo $((QUOTA * 1000)) > $G/cpu.cfs_quota_us
    echo $$ > $G/cgroup.procs  # this shell, for the node to inherit; moved back below
  fi
  taskset -c $i .venv/bin/python -m safeguarding serve --sandbox --data-dir $D --port $PORT --workers 1 --database-url $URL > /dev/null 2>&1 &
  PIDS+=($!)
  [ -n "$QUOTA" ] && echo $$ > /sys/fs/cgroup/cpu/cgroup.procs
done
for PORT in ${PORTS[@]}; do for k in $(seq 60); do curl -sk https://127.0.0.1:$PORT/_ping >/dev/null && break; sleep 0.5; done; done
C=$((32 / N))
W=(); for PORT in ${PORTS[@]}; do BENCH_LUA=bench/lua wrk -t1 -c$C -d2s -s bench/lua/read.lua https://127.0.0.1:$PORT -- $P > /dev/null & W+=($!); done; wait ${W[@]}
ST0=$(awk '/^cpu /{print $9}' /proc/stat)
W=(); for PORT in ${PORTS[@]}; do (BENCH_LUA=bench/lua wrk -t1 -c$C -d${S}s -s bench/lua/read.lua https://127.0.0.1:$PORT -- $P | grep BENCH_JSON | sed 's/BENCH_JSON //' > $T/nodes-wrk-$PORT.json) & W+=($!); done
wait ${W[@]}
ST1=$(awk '/^cpu /{print $9}' /proc/stat)
python3 - "$S" "$T" ${PORTS[@]} <<'PY'
import json, sys
s = float(sys.argv[1]); total = 0; errors = 0; p50 = []
for port in sys.argv[3:]:
    d = json.load(open(f"{sys.argv[2]}/nodes-wrk-{port}.json"))
    total += d["requests"]; errors += sum(d["errors"].values()); p50.append(d["latency_us"]["p50"] / 1000)
print(f"rps={total / s:.0f} errors={errors} p50_ms={[round(x, 1) for x in p50]}")
PY
echo "steal_ticks=$((ST1 - ST0))"
[ -n "$QUOTA" ] && for i in $(seq 0 $((N-1))); do echo "node $i: $(tr '\n' ' ' < /sys/fs/cgroup/cpu/sgbench-node$i/cpu.stat)"; done
kill ${PIDS[@]}; wait ${PIDS[@]} 2>/dev/null
[ -n "$QUOTA" ] && for i in $(seq 0 $((N-1))); do rmdir /sys/fs/cgroup/cpu/sgbench-node$i 2>/dev/null; done
true
