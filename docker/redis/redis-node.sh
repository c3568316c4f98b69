#!/bin/sh
# redis-node — PID 1 of every redis container (dash). Starts redis-server as
#
#   redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --cluster-enabled yes \
#                --cluster-config-file nodes.conf --dir /data  <persistence>  $REDIS_OVERRIDES  "$@"
#
# /data is the node's own volume: nodes.conf, dump.rdb and appendonlydir/ survive a container
# restart, so a restarted node loads whatever Redis loads in production, including the dump.rdb a
# replica writes on every full sync even with save "". Nothing here deletes data on a normal start.
#
# REDIS_PERSISTENCE  none (default)  save "", appendonly no: no save points, but the files Redis
#                                    still writes (a replica's full sync) are kept and loaded
#                    rdb             save 3600 1 300 100 60 10000 (Redis's and Debian's default lines)
#                    aof             appendonly yes, appendfsync everysec (save left at Redis's default)
# REDIS_OVERRIDES    the timing settings of the stack (listed with their reasons in compose.yml)
#
# If redis-server dies from SIGKILL (exit 137: docker/chaos/restart-empty kills it by PID from the
# host), it is started again at once on the same files, like a supervisor restarting a crashed
# process. Only if /data/.restart-empty exists (restart-empty writes it just before) are the data
# files (dump.rdb, appendonlydir, temp-*) and the marker deleted first, so that start comes back
# empty; nodes.conf is always kept (same node ID, epoch and slots). Any other exit of redis-server
# ends the container. SIGTERM/SIGINT (docker stop) are forwarded to redis-server; docker kill -s
# KILL kills this shell, and with it the whole container.
#
# usage: redis-node <extra redis-server arguments...>
set -u
case ${REDIS_PERSISTENCE:-none} in
  none) set -- --save "" --appendonly no "$@" ;;
  rdb) set -- --save 3600 1 300 100 60 10000 --appendonly no "$@" ;;
  aof) set -- --appendonly yes --appendfsync everysec "$@" ;;
  *) echo "redis-node: REDIS_PERSISTENCE=${REDIS_PERSISTENCE}: want none, rdb or aof" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086 # REDIS_OVERRIDES is a list of words
set -- --port 6379 --bind 0.0.0.0 --protected-mode no --cluster-enabled yes \
  --cluster-config-file nodes.conf --dir /data ${REDIS_OVERRIDES:-} "$@"

pid=
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid"; fi; exit 0' TERM INT
while :; do
  if [ -e /data/.restart-empty ]; then
    rm -rf /data/dump.rdb /data/appendonlydir /data/temp-* /data/.restart-empty
    echo "redis-node: /data/.restart-empty: data files deleted, starting empty (nodes.conf kept)" >&2
  fi
  /usr/bin/redis-server "$@" &
  pid=$!
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 137 ] || exit "$rc"
  echo "redis-node: redis-server (pid $pid) was killed with SIGKILL; starting it again on its files" >&2
done
