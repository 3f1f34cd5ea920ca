#!/usr/bin/env bash
# Fan-out across several hub nodes, measured against one node in the same run.
#
#   bench/cluster.sh                        # 3 nodes, NATS and pgnotify, against 1 node
#   MEMBERS=300 MESSAGES=500 bench/cluster.sh
#
# For each deployment — one hubserver on PostgreSQL; three on one PostgreSQL
# joined by NATS; three joined by PostgreSQL LISTEN/NOTIFY — it runs the
# load tool's fan-out (one sender, MEMBERS receivers that ack and read like
# the SDK) twice: saturated (every receiver's deliveries/s, send -> receive
# latency), then at half the message rate the single node reached (p50/p99
# when not saturated: on several nodes nearly every delivery crosses the
# broker, so this is the publish -> remote delivery latency). The receivers
# are spread over the nodes (client i on node i mod 3); the sender is on
# the first. Every run checks exactly-once delivery.
#
# Needs Go, psql, PostgreSQL (REALTIME_TEST_POSTGRES_DSN, default the local
# test database) and NATS (NATS_URL, default nats://127.0.0.1:4222).
# Results: one JSON per run in $OUT, and a table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${MEMBERS:-1000}
MESSAGES=${MESSAGES:-2000}
NODES=${NODES:-3}
DSN=${REALTIME_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
OUT=${OUT:-$(mktemp -d /tmp/leanhub-cluster-XXXXXX)}
mkdir -p "$OUT/bin"

go build -o "$OUT/bin/hubserver" ./bench/hubserver
go build -o "$OUT/bin/leanload" ./cmd/leanload

# start runs in a subshell ($(...)): what it starts is recorded in files.
: >"$OUT/pids"
: >"$OUT/schemas"
stop_all() {
  while read -r p; do kill "$p" 2>/dev/null || true; done <"$OUT/pids"
  while read -r p; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done <"$OUT/pids"
  : >"$OUT/pids"
}
cleanup() {
  stop_all
  while read -r s; do psql "$DSN" -qc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done <"$OUT/schemas"
}
trap cleanup EXIT

# start NAME N BROKER: N hubservers on a fresh schema; prints their URLs, comma-separated.
start() {
  local name=$1 n=$2 broker=$3 schema urls=""
  schema="cluster_bench_${name//-/_}_$$"
  echo "$schema" >>"$OUT/schemas"
  psql "$DSN" -v ON_ERROR_STOP=1 -qc "CREATE SCHEMA $schema" >/dev/null
  for i in $(seq 1 "$n"); do
    local args=(-db "$DSN&search_path=$schema" -addr 127.0.0.1:0 -max-conns "${MAX_CONNS:-8}")
    [ -n "$broker" ] && args+=(-broker "$broker")
    "$OUT/bin/hubserver" "${args[@]}" >"$OUT/$name.$i.out" 2>"$OUT/$name.$i.server.log" &
    echo $! >>"$OUT/pids"
    for _ in $(seq 1 100); do grep -q http "$OUT/$name.$i.out" 2>/dev/null && break; sleep 0.1; done
    grep -q http "$OUT/$name.$i.out" || { echo "node $i of $name did not start:" >&2; cat "$OUT/$name.$i.server.log" >&2; exit 1; }
    urls+="${urls:+,}$(grep -o 'http://[^ ]*' "$OUT/$name.$i.out")"
  done
  echo "$urls"
}

field() { # field FILE PATH: a number from a leanload JSON (python3 is on every CI image we use)
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=d
for k in sys.argv[2].split('.'): v=v[k]
print(v)" "$1" "$2"
}

load() { # load NAME URLS [RATE]
  local name=$1 urls=$2 rate=${3:-0}
  "$OUT/bin/leanload" -scenario fanout -server "$urls" -members "$MEMBERS" -messages "$MESSAGES" \
    -rate "$rate" -json -quiet >"$OUT/$name.json" 2>"$OUT/$name.log" || true
  echo "load $name: ok=$(field "$OUT/$name.json" ok) $(uptime | sed 's/.*load/load/')" >&2
}

run_deployment() { # run_deployment NAME N BROKER
  local name=$1 n=$2 broker=$3 urls
  urls=$(start "$name" "$n" "$broker")
  load "$name" "$urls"
  stop_all
  urls=$(start "$name-half" "$n" "$broker")
  load "$name-half" "$urls" "$HALF"
  stop_all
}

urls=$(start single 1 "")
load single "$urls"
stop_all
HALF=$(python3 -c "import json; d=json.load(open('$OUT/single.json')); print(round(d['fanout']['send_per_sec']/2, 1))")
urls=$(start single-half 1 "")
load single-half "$urls" "$HALF"
stop_all
run_deployment nats "$NODES" "$NATS_URL"
run_deployment pgnotify "$NODES" postgres

printf '\nfan-out 1 -> %s members, %s messages; half rate %s msgs/s (half of the single node)\n' "$MEMBERS" "$MESSAGES" "$HALF"
printf '%-10s %6s %14s %8s %10s %10s %12s %12s %4s\n' deployment nodes deliveries/s ratio p50_ms p99_ms half_p50_ms half_p99_ms ok
base=$(field "$OUT/single.json" fanout.deliveries_per_sec)
for d in single nats pgnotify; do
  n=$NODES; [ "$d" = single ] && n=1
  dps=$(field "$OUT/$d.json" fanout.deliveries_per_sec)
  printf '%-10s %6s %14.0f %8.2f %10.0f %10.0f %12.0f %12.0f %4s\n' "$d" "$n" "$dps" \
    "$(python3 -c "print($dps/$base)")" \
    "$(field "$OUT/$d.json" fanout.latency.p50_ms)" "$(field "$OUT/$d.json" fanout.latency.p99_ms)" \
    "$(field "$OUT/$d-half.json" fanout.latency.p50_ms)" "$(field "$OUT/$d-half.json" fanout.latency.p99_ms)" \
    "$(field "$OUT/$d.json" ok)/$(field "$OUT/$d-half.json" ok)"
done
echo "results in $OUT"
