#!/usr/bin/env bash
# The benchmark harness: builds the hub's bench server, leanload, the
# store ceiling, the centrifuge peer and the report, then runs back to
# back, each server and its load in two processes on this machine:
#
#   1. hub fanout on SQLite, on PostgreSQL; centrifuge fanout
#   2. pairs on SQLite and on PostgreSQL, each followed by the raw
#      multi-row insert ceiling on a fresh database of the same kind
#   3. idle sockets: server RSS per logged-in socket (SQLite)
#   4. fanout at half of each server's measured saturation rate: p99
#   5. storm: reconnect storm after a real server restart (SQLite)
#
# and prints a table with the ratios (bench/README.md says what each
# figure means). Every JSON result stays in $OUT.
#
#   bench/run.sh                       # everything, default sizes
#   MEMBERS=200 MESSAGES=500 PAIRS=100 SOCKETS=2000 CLIENTS=500 bench/run.sh   # quicker
#   SKIP_PG=1 SKIP_STORM=1 bench/run.sh
#   CENTRIFUGE_CLIENT=centrifuge-go bench/run.sh   # the official client as the peer's load
#
# PostgreSQL: REALTIME_TEST_POSTGRES_DSN (default
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable); each run gets a
# fresh schema (created with psql, dropped at the end).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

MEMBERS=${MEMBERS:-1000}
MESSAGES=${MESSAGES:-2000}
WINDOW=${WINDOW:-256}
PAIRS=${PAIRS:-500}
PAIR_MESSAGES=${PAIR_MESSAGES:-200}
SOCKETS=${SOCKETS:-10000}
CLIENTS=${CLIENTS:-2000}
CEILING_ROWS=${CEILING_ROWS:-200000}
CENTRIFUGE_CLIENT=${CENTRIFUGE_CLIENT:-raw} # or centrifuge-go
PHASE_TIMEOUT=${PHASE_TIMEOUT:-15m}
RUN_TIMEOUT=${RUN_TIMEOUT:-30m} # bound of one load process
DSN=${REALTIME_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
OUT=${OUT:-$(mktemp -d -t leanbench.XXXXXX)}
mkdir -p "$OUT"
BIN=$OUT/bin
export GOFLAGS=${GOFLAGS:--mod=mod}

log() { printf '\n== %s\n' "$*" >&2; }

log "building into $BIN"
mkdir -p "$BIN"
go build -o "$BIN/hubserver" ./bench/hubserver &&
  go build -o "$BIN/leanload" ./cmd/leanload &&
  go build -o "$BIN/ceiling" ./bench/ceiling &&
  go build -o "$BIN/report" ./bench/report &&
  (cd bench/centrifuge && go build -o "$BIN/centrifuge-server" ./server && go build -o "$BIN/centrifuge-load" ./load) ||
  { echo "build failed" >&2; exit 1; }

# The open-file limit: idle holds $SOCKETS sockets in the load and in the
# server (each raises its soft limit to the hard one itself).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SERVER_PID= SERVER_URL= CPU_NAME=
: >"$OUT/cpu.txt"
: >"$OUT/schemas"
cleanup() {
  stop_server
  while read -r s; do
    [ -n "$s" ] && psql -q "$DSN" -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1
  done <"$OUT/schemas"
}
trap cleanup EXIT

# start_server NAME CMD...: starts a server, waits for its URL line.
start_server() {
  local name=$1
  shift
  : >"$OUT/$name.server.log"
  "$@" >"$OUT/$name.server.out" 2>>"$OUT/$name.server.log" &
  SERVER_PID=$!
  echo "$SERVER_PID" >"$OUT/server.pid"
  for _ in $(seq 1 300); do
    SERVER_URL=$(grep -o 'http://[^ ]*' "$OUT/$name.server.out" 2>/dev/null | head -1)
    [ -n "$SERVER_URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $name did not start; see $OUT/$name.server.log" >&2
  cat "$OUT/$name.server.log" >&2
  SERVER_PID=
  return 1
}

# server_cpu NAME: appends the server's CPU seconds so far to cpu.txt, to
# read the figures against (server and load share the cores).
server_cpu() {
  local pid f
  pid=$(cat "$OUT/server.pid" 2>/dev/null) || return 0
  f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || return 0
  set -- $f
  awk -v u="$1" -v s="$2" -v t="$(getconf CLK_TCK)" -v n="$CPU_NAME" \
    'BEGIN { printf "%-22s server cpu: user %.1fs sys %.1fs\n", n, u/t, s/t }' >>"$OUT/cpu.txt"
}

stop_server() {
  local pid
  [ -n "${CPU_NAME:-}" ] && server_cpu
  CPU_NAME=
  pid=$(cat "$OUT/server.pid" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$OUT/server.pid"
  SERVER_PID=
}

pg_ok() { [ -z "${SKIP_PG:-}" ] && command -v psql >/dev/null && psql -q "$DSN" -c 'SELECT 1' >/dev/null 2>&1; }

# fresh_pg NAME: creates a schema and prints a DSN using it.
fresh_pg() {
  local schema="leanbench_$1_$$_$RANDOM"
  psql -q "$DSN" -c "CREATE SCHEMA $schema" >/dev/null || return 1
  echo "$schema" >>"$OUT/schemas" # dropped on exit
  case $DSN in *\?*) echo "$DSN&search_path=$schema" ;; *) echo "$DSN?search_path=$schema" ;; esac
}

# load NAME ARGS...: leanload against the current server, JSON to NAME.json.
# note_load NAME: the machine's load average as a run starts; figures
# taken while other work ran on the machine are not comparable.
note_load() { printf '%-22s loadavg at start: %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" >>"$OUT/cpu.txt"; }

load() {
  local name=$1
  shift
  CPU_NAME=$name
  note_load "$name"
  local TIMEFORMAT="$(printf '%-22s' "$name") load   cpu: user %Us sys %Ss (wall %Rs)"
  { time timeout "$RUN_TIMEOUT" "$BIN/leanload" -server "$SERVER_URL" -json -quiet -phase-timeout "$PHASE_TIMEOUT" "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.log"; } 2>>"$OUT/cpu.txt"
  local rc=$?
  sed -n '1,40p' "$OUT/$name.log" >&2
  [ $rc -eq 0 ] || echo "($name exited $rc)" >&2
}

# cload NAME ARGS...: the centrifuge load against the current server.
cload() {
  local name=$1
  shift
  note_load "$name"
  local TIMEFORMAT="$(printf '%-22s' "$name") load   cpu: user %Us sys %Ss (wall %Rs)"
  { time timeout "$RUN_TIMEOUT" "$BIN/centrifuge-load" -json -client "$CENTRIFUGE_CLIENT" -ws "ws://${SERVER_URL#http://}connection/websocket" "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.log"; } 2>>"$OUT/cpu.txt"
}

hub_db() { # hub_db sqlite|pg NAME: a fresh database for one run
  if [ "$1" = sqlite ]; then echo "$OUT/$2.db"; else fresh_pg "$2"; fi
}

FANOUT="-scenario fanout -members $MEMBERS -messages $MESSAGES -window $WINDOW"
BACKENDS=(sqlite)
if pg_ok; then BACKENDS+=(pg); else log "PostgreSQL skipped (SKIP_PG set, no psql, or $DSN unreachable)"; fi

# 1. fan-out
for be in "${BACKENDS[@]}"; do
  log "hub fanout on $be: 1 -> $MEMBERS x $MESSAGES"
  db=$(hub_db "$be" fanout) && start_server "hub-fanout-$be" "$BIN/hubserver" -db "$db" &&
    load "hub-fanout-$be" $FANOUT
  stop_server
done
log "centrifuge fanout: 1 -> $MEMBERS x $MESSAGES"
start_server centrifuge "$BIN/centrifuge-server" && CPU_NAME=centrifuge-fanout &&
  cload centrifuge-fanout -members "$MEMBERS" -messages "$MESSAGES" -window "$WINDOW"
cat "$OUT/centrifuge-fanout.log" >&2
stop_server

# 2. pairs and the insert ceiling
for be in "${BACKENDS[@]}"; do
  log "hub pairs on $be: $PAIRS pairs x $PAIR_MESSAGES"
  db=$(hub_db "$be" pairs) && start_server "hub-pairs-$be" "$BIN/hubserver" -db "$db" &&
    load "hub-pairs-$be" -scenario pairs -pairs "$PAIRS" -pair-messages "$PAIR_MESSAGES"
  stop_server
  log "raw multi-row insert ceiling on $be ($CEILING_ROWS rows, 64 per transaction)"
  db=$(hub_db "$be" ceiling) && "$BIN/ceiling" -db "$db" -rows "$CEILING_ROWS" -json >"$OUT/ceiling-$be.json" 2>"$OUT/ceiling-$be.log"
  cat "$OUT/ceiling-$be.json" "$OUT/ceiling-$be.log" >&2
done

# 3. idle sockets
log "idle: $SOCKETS logged-in sockets, server RSS"
start_server hub-idle "$BIN/hubserver" -db "$OUT/idle.db" &&
  load hub-idle -scenario idle -sockets "$SOCKETS" -pid "$SERVER_PID" -settle 10s -concurrency 32
stop_server

# 4. p99 at half the saturation rate
half_rate() { "$BIN/report" -half-rate "$MEMBERS" "$OUT/$1.json"; }
for be in "${BACKENDS[@]}"; do
  rate=$(half_rate "hub-fanout-$be") || continue
  log "hub fanout on $be at half saturation: $rate msgs/s"
  db=$(hub_db "$be" half) && start_server "hub-half-$be" "$BIN/hubserver" -db "$db" &&
    load "hub-half-$be" $FANOUT -rate "$rate"
  stop_server
done
if rate=$(half_rate centrifuge-fanout); then
  log "centrifuge fanout at half saturation: $rate msgs/s"
  start_server centrifuge-half "$BIN/centrifuge-server" && CPU_NAME=centrifuge-half &&
    cload centrifuge-half -members "$MEMBERS" -messages "$MESSAGES" -window "$WINDOW" -rate "$rate"
  cat "$OUT/centrifuge-half.log" >&2
  stop_server
fi

# 5. storm after a real restart
if [ -z "${SKIP_STORM:-}" ]; then
  log "storm: $CLIENTS clients reconnect at once after a server restart (SQLite)"
  start_server hub-storm "$BIN/hubserver" -db "$OUT/storm.db"
  if [ -n "$SERVER_PID" ]; then
    addr=${SERVER_URL#http://}
    addr=${addr%%/*}
    restart="$ROOT/bench/restart-hub.sh $OUT/server.pid $OUT/hub-storm.server.log -- $BIN/hubserver -addr $addr -db $OUT/storm.db"
    load storm -scenario storm -clients "$CLIENTS" -steady 20 -restart-cmd "$restart"
  fi
  stop_server
fi

log "CPU time of each server and its load (they share the machine's cores), load average at each start"
cat "$OUT/cpu.txt"
log "results (JSON in $OUT)"
"$BIN/report" -members "$MEMBERS" "$OUT"
