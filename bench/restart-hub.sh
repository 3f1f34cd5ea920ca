#!/usr/bin/env bash
# Restarts a server for leanload's storm scenario (-restart-cmd):
#   bench/restart-hub.sh PIDFILE LOGFILE -- COMMAND [ARGS...]
# stops the process in PIDFILE (SIGTERM, then SIGKILL after 15 s), starts
# COMMAND again in the background with its output appended to LOGFILE, and
# writes the new pid to PIDFILE. leanload then waits for the router itself.
set -euo pipefail
pidfile=$1 log=$2
shift 2
[ "${1:-}" = "--" ] && shift
pid=$(cat "$pidfile")
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 150); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true
nohup "$@" >>"$log" 2>&1 &
echo $! >"$pidfile"
