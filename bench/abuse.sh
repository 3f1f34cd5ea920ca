#!/usr/bin/env bash
# What one abusive client costs the honest ones, measured against the same
# run without it.
#
#   bench/abuse.sh                     # SQLite and PostgreSQL
#   MEMBERS=100 RATE=20 SKIP_PG=1 bench/abuse.sh
#
# The server is bench/hubserver with the hub's default limits (sends 50/s,
# burst 100, per client; conversation changes, edits and queries at their
# defaults). The honest load is leanload's fan-out: one sender at RATE
# msgs/s (under the send limit) to MEMBERS receivers that ack and read like
# the SDK. It runs twice on one server: alone, then while leanload's flood
# scenario (one socket sending conversation creations, updates, queries,
# history pulls, edits and messages as fast as the server answers) runs
# beside it in another process. The table gives the honest figures of both
# runs, their ratio, and what the flood got served and refused.
#
# Needs Go and jq; PostgreSQL runs need psql (REALTIME_TEST_POSTGRES_DSN).
set -euo pipefail
cd "$(dirname "$0")/.."

MEMBERS=${MEMBERS:-200}
RATE=${RATE:-40}
MESSAGES=${MESSAGES:-1200}
DSN=${REALTIME_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
OUT=${OUT:-$(mktemp -d /tmp/leanhub-abuse-XXXXXX)}
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/hubserver" ./bench/hubserver
go build -o "$OUT/bin/leanload" ./cmd/leanload

server_pid=""
schema=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  [ -n "$schema" ] && psql "$DSN" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# serve DB: starts a hubserver with the default limits; sets url.
serve() {
  "$OUT/bin/hubserver" -db "$1" -send-rate 50 -send-burst 100 -command-rate 0 -max-members 1000 >"$OUT/server.out" 2>"$OUT/$2.server.log" &
  server_pid=$!
  for _ in $(seq 1 100); do grep -q http "$OUT/server.out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[^ ]*' "$OUT/server.out" | head -1)
  [ -n "$url" ] || { echo "hubserver did not start" >&2; cat "$OUT/$2.server.log" >&2; exit 1; }
}

fanout() { # NAME
  "$OUT/bin/leanload" -server "$url" -scenario fanout -members "$MEMBERS" -messages "$MESSAGES" -rate "$RATE" -json -quiet \
    >"$OUT/$1.json" 2>"$OUT/$1.log" || { echo "fanout $1 failed:" >&2; cat "$OUT/$1.log" >&2; exit 1; }
}

run_db() { # NAME DB
  serve "$2" "$1"
  fanout "$1-alone"
  "$OUT/bin/leanload" -server "$url" -scenario flood -flood-for 10m -json -quiet >"$OUT/$1-flood.json" 2>"$OUT/$1-flood.log" &
  local flood=$!
  sleep 2 # the flood is at full speed before the honest run starts
  fanout "$1-flooded"
  kill -INT "$flood"; wait "$flood" || true
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

run_db sqlite "$OUT/abuse.db"
if [ -z "${SKIP_PG:-}" ]; then
  schema="abuse_bench_$$"
  psql "$DSN" -v ON_ERROR_STOP=1 -qc "CREATE SCHEMA $schema" >/dev/null
  run_db postgres "$DSN&search_path=$schema"
fi

printf '%-9s %-8s %14s %9s %9s\n' store run "deliveries/s" "p50 ms" "p99 ms"
for db in sqlite postgres; do
  [ -f "$OUT/$db-alone.json" ] || continue
  for run in alone flooded; do
    jq -r --arg db "$db" --arg run "$run" \
      '[$db, $run, (.fanout.deliveries_per_sec|floor), (.fanout.latency.p50_ms*10|round/10), (.fanout.latency.p99_ms*10|round/10)] | @tsv' \
      "$OUT/$db-$run.json" | awk -F'\t' '{printf "%-9s %-8s %14s %9s %9s\n", $1, $2, $3, $4, $5}'
  done
  jq -rn --slurpfile a "$OUT/$db-alone.json" --slurpfile f "$OUT/$db-flooded.json" \
    '"          flooded/alone: deliveries/s \(($f[0].fanout.deliveries_per_sec / $a[0].fanout.deliveries_per_sec * 100 | round) / 100)x, p99 \(($f[0].fanout.latency.p99_ms / $a[0].fanout.latency.p99_ms * 100 | round) / 100)x"'
  jq -r '.flood.families | to_entries[] | "          flood \(.key): served \(.value.served) (\(.value.served_per_sec|floor)/s), refused \(.value.refused // {} | tostring)"' "$OUT/$db-flood.json"
done
echo "results in $OUT"
