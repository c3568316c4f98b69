#!/bin/sh
# redis-node — PID 1 of every redis container (dash). Runs redis-server with the given arguments.
# If redis-server dies from SIGKILL (exit 137: docker/chaos/restart-empty kills it by PID from the
# host), it is started again at once, EMPTY: no persistence, and the --dir tmpfs is wiped first so
# a dump.rdb left by an earlier full sync is not loaded. Any other exit ends the container.
# SIGTERM/SIGINT (docker stop) are forwarded to redis-server. docker kill -s KILL kills this
# shell, and with it the whole container.
#
# usage: redis-node <redis-server arguments...>
set -u
pid=
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid"; fi; exit 0' TERM INT
while :; do
  rm -f /run/redis/*.rdb /run/redis/*.aof
  /usr/bin/redis-server "$@" &
  pid=$!
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 137 ] || exit "$rc"
  echo "redis-node: redis-server (pid $pid) was killed with SIGKILL; starting it again, empty" >&2
done
