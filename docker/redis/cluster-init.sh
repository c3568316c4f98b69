#!/bin/sh
# cluster-init — one-shot job of the compose stack (runs inside shardseq-redis:dev, dash).
# Waits until every node answers PING, creates a Redis Cluster with one replica per master unless
# one already exists (idempotent), then waits until every node reports cluster_state:ok, sees the
# full topology (every replica attached) and, on replicas, master_link_status:up.
#
# usage: cluster-init                  (nodes from $REDIS_NODES: "ip:port ip:port ...", IPs only:
#                                        redis-cli --cluster create does not take host names)
# env:   INIT_TIMEOUT   seconds for each wait phase (default 60)
set -eu

nodes=${REDIS_NODES:?REDIS_NODES must list the nodes as ip:port}
limit=$(( ${INIT_TIMEOUT:-60} * 5 ))   # polls of 0.2 s

cli() { addr=$1; shift; /usr/bin/redis-cli -h "${addr%:*}" -p "${addr##*:}" "$@"; }

count=0
for n in $nodes; do
  i=0
  until [ "$(cli "$n" ping 2>/dev/null)" = "PONG" ]; do
    i=$((i + 1))
    [ "$i" -lt "$limit" ] || { echo "cluster-init: $n does not answer PING" >&2; exit 1; }
    sleep 0.2
  done
  count=$((count + 1))
done
echo "cluster-init: all $count nodes answer PING"

first=${nodes%% *}
info=$(cli "$first" cluster info)
case $info in
  *"cluster_slots_assigned:16384"*)
    echo "cluster-init: cluster already exists, not creating it" ;;
  *)
    for n in $nodes; do
      case $(cli "$n" cluster info) in
        *"cluster_known_nodes:1"[!0-9]*) ;;
        *) echo "cluster-init: $n already knows other nodes but slots are not all assigned;" \
                "refusing to guess (reset with: docker-compose down -v)" >&2; exit 1 ;;
      esac
    done
    # shellcheck disable=SC2086 # word splitting of $nodes is intended
    /usr/bin/redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes ;;
esac

# Converged = on every node: cluster_state:ok, every other node seen as master or replica as
# --cluster create assigned them, and (on replicas) the replication link up.
want_replicas=$((count / 2))
converged() {
  info=$(cli "$1" cluster info 2>/dev/null) || return 1
  case $info in *"cluster_state:ok"*) ;; *) return 1 ;; esac
  replicas=0
  while read -r _id _addr flags _rest; do
    case $flags in *slave*) replicas=$((replicas + 1)) ;; esac
  done <<EOT
$(cli "$1" cluster nodes 2>/dev/null)
EOT
  [ "$replicas" -eq "$want_replicas" ] || return 1
  case $(cli "$1" info replication 2>/dev/null) in
    *"role:slave"*) case $(cli "$1" info replication) in *"master_link_status:up"*) ;; *) return 1 ;; esac ;;
  esac
}
for n in $nodes; do
  i=0
  until converged "$n"; do
    i=$((i + 1))
    [ "$i" -lt "$limit" ] || { echo "cluster-init: $n did not converge (cluster_state:ok, $want_replicas replicas, links up)" >&2; exit 1; }
    sleep 0.2
  done
done
echo "cluster-init: cluster_state:ok on all $count nodes, $want_replicas replicas in sync"
cli "$first" cluster nodes
