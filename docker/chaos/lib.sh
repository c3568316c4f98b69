# shellcheck shell=bash
# Shared helpers of the chaos scripts (sourced, not run). Everything Redis-side goes through
# `docker exec <redis container> /usr/bin/redis-cli` (the images are scratch; redis-cli is in the
# redis image), and always talks to the node inside its own container (127.0.0.1), so a query never
# crosses a partition the scripts made. iptables runs from the host inside a container's network
# namespace (nsenter -t <pid> -n), never in the image.

CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DOCKER_DIR=$(cd "$CHAOS_DIR/.." && pwd)
COMPOSE_FILE=$DOCKER_DIR/compose.yml
PROJECT=shardseq
NET_PREFIX=10.77.6          # compose.yml: redis-N = $NET_PREFIX.1N
REDIS_N=(1 2 3 4 5 6)
RULE_TAG=shardseq-chaos     # iptables comment on every rule these scripts add
WAIT_TIMEOUT=${WAIT_TIMEOUT:-60}   # seconds for any recovery wait

log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }   # ms -> "3.9"

# dc ARGS: docker compose v2 plugin if present, else docker-compose v1; always project "shardseq".
dc() {
  if [[ -z ${_DC:-} ]]; then
    if docker compose version >/dev/null 2>&1; then _DC="docker compose"; else _DC=docker-compose; fi
  fi
  $_DC -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
}

cname() { echo "shardseq-redis-$1"; }           # N -> container
ip_of() { echo "$NET_PREFIX.1$1"; }              # N -> IP
n_of_ip() { local ip=${1%%:*}; echo "${ip##*.1}"; }   # 10.77.6.13[:6379@16379] -> 3

# state N -> running | paused | exited | missing
state() {
  local s
  s=$(docker inspect -f '{{if .State.Paused}}paused{{else}}{{.State.Status}}{{end}}' "$(cname "$1")" 2>/dev/null) || { echo missing; return; }
  echo "$s"
}
up() { [[ $(state "$1") == running ]]; }

# rcli N ARGS: redis-cli against node N, inside its own container (5 s bound).
rcli() {
  local n=$1; shift
  timeout 5 docker exec -i "$(cname "$n")" /usr/bin/redis-cli -p 6379 "$@" 2>/dev/null | tr -d '\r'
}

# any_up: a node that is running and not paused (prints N), for cluster-wide queries.
any_up() {
  local n
  for n in "${REDIS_N[@]}"; do up "$n" && { echo "$n"; return 0; }; done
  return 1
}

# masters [N]: current masters as seen by node N (default: any up node), one per line:
#   "<node> <id> <slots...>" sorted by first slot; masters without slots skipped, and so are
#   failed ones: flagged fail or fail?, or (not N itself) with the bus link down, as
#   internal/lab/localcluster reads CLUSTER NODES (cluster.NodeLine).
masters() {
  local from=${1:-$(any_up)}
  rcli "$from" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && ($8 == "connected" || $3 ~ /myself/) && NF >= 9 {
      split($2, a, ":"); n = a[1]; sub(/.*\.1/, "", n)
      split($9, s, "-"); slots = $9; for (i = 10; i <= NF; i++) slots = slots " " $i
      print s[1], n, $1, slots }' | sort -n | cut -d' ' -f2-
}

# replicas_of ID [N]: nodes (N) that replicate master ID, as seen by node N.
replicas_of() {
  local id=$1 from=${2:-$(any_up)}
  rcli "$from" cluster nodes | awk -v id="$id" '$3 ~ /slave/ && $4 == id {
      split($2, a, ":"); n = a[1]; sub(/.*\.1/, "", n); print n }'
}

# promoted_over OLD SLOT: "a replica was promoted in place of master OLD", the rule of
# internal/lab/localcluster.Promoted that the Go tests, the chaos engine and the benchmarks use: as a
# node other than OLD sees it (OLD may still believe it is master), OLD serves no slot and
# masters no node flags failed serve all 16384 slots. Prints the node that serves SLOT now (pass
# one of OLD's slots); fails while the rule does not hold.
promoted_over() {
  local old=$1 slot=$2 from='' n
  for n in "${REDIS_N[@]}"; do [[ $n != "$old" ]] && up "$n" && { from=$n; break; }; done
  [[ -n $from ]] || return 1
  masters "$from" | awk -v old="$old" -v slot="$slot" '
    { if ($1 == old) bad = 1
      for (i = 3; i <= NF; i++) {
        if ($i ~ /^\[/) continue
        if (split($i, r, "-") == 1) r[2] = r[1]
        covered += r[2] - r[1] + 1
        if (slot >= r[1] && slot <= r[2]) owner = $1 } }
    END { if (bad || covered != 16384 || owner == "") exit 1; print owner }'
}

# pick_master [SEL]: print "N ID SLOTS" of a current master. SEL: empty = random,
# 1..3 = the k-th master by slot order (1 owns slot 0), redis-K = node K (must be a master).
pick_master() {
  local sel=${1:-} lines count line
  mapfile -t lines < <(masters)
  count=${#lines[@]}
  [[ $count -gt 0 ]] || die "no master found (is the stack up? docker/chaos/status)"
  if [[ -z $sel ]]; then
    line=${lines[RANDOM % count]}
  elif [[ $sel =~ ^redis-([1-6])$ ]]; then
    for line in "${lines[@]}" ""; do [[ ${line%% *} == "${BASH_REMATCH[1]}" ]] && break; done
    [[ -n $line ]] || die "$sel is not a master now"
  elif [[ $sel =~ ^[0-9]+$ ]] && ((sel >= 1 && sel <= count)); then
    line=${lines[sel - 1]}
  else
    die "bad master selector '$sel' (1..$count or redis-1..redis-6)"
  fi
  echo "$line"
}

# role N -> master | slave | "" (unreachable)
role() { rcli "$1" role | head -1; }

# node_ok N: node N is up, sees cluster_state:ok, sees 3 replicas and no failed/handshake node,
# and, if a replica, has its replication link up.
node_ok() {
  local n=$1 out
  up "$n" || return 1
  # one redis-cli call: CLUSTER INFO, CLUSTER NODES and INFO replication, concatenated
  out=$(printf 'CLUSTER INFO\nCLUSTER NODES\nINFO replication\n' | rcli "$n") || return 1
  [[ $out == *cluster_state:ok* ]] || return 1
  [[ $out != *role:slave* || $out == *master_link_status:up* ]] || return 1
  awk 'NF >= 8 && $2 ~ /@/ { if ($3 ~ /slave/) r++; if ($3 ~ /fail|handshake|noaddr/ || $8 != "connected") bad = 1 }
       END { exit bad || r != 3 }' <<<"$out"
}

# wait_until TIMEOUT_S CMD...: poll CMD every 0.2 s until it succeeds; fail after TIMEOUT_S.
wait_until() {
  local limit=$(($(now_ms) + $1 * 1000)); shift
  until "$@"; do
    (($(now_ms) < limit)) || return 1
    sleep 0.2
  done
}

all_converged() { local n; for n in "${REDIS_N[@]}"; do node_ok "$n" || return 1; done; }
# cluster_ok_on_up: every running, unpaused node reports cluster_state:ok (a node may be down).
cluster_ok_on_up() {
  local n
  for n in "${REDIS_N[@]}"; do
    up "$n" || continue
    [[ $(rcli "$n" cluster info) == *cluster_state:ok* ]] || return 1
  done
}
is_replica_linked() { [[ $(rcli "$1" info replication) == *role:slave*master_link_status:up* ]]; }

# wait_converged: all_converged within $WAIT_TIMEOUT seconds, or die.
wait_converged() {
  wait_until "$WAIT_TIMEOUT" all_converged || die "cluster did not converge within ${WAIT_TIMEOUT}s (see docker/chaos/status)"
}

# iptables inside container N's network namespace, from the host.
pid_of() { docker inspect -f '{{.State.Pid}}' "$(cname "$1")"; }
ipt() { local n=$1; shift; nsenter -t "$(pid_of "$n")" -n iptables -w "$@"; }
# cut_link A B: drop all traffic between nodes A and B (rules on both sides, tagged).
cut_link() {
  ipt "$1" -I INPUT -s "$(ip_of "$2")" -j DROP -m comment --comment "$RULE_TAG"
  ipt "$2" -I INPUT -s "$(ip_of "$1")" -j DROP -m comment --comment "$RULE_TAG"
}
# unblock_container C: delete every tagged rule in container C's netns (C = any container name).
unblock_container() {
  local c=$1 pid rule
  pid=$(docker inspect -f '{{.State.Pid}}' "$c" 2>/dev/null) || return 0
  [[ $pid != 0 ]] || return 0
  while read -r rule; do
    [[ -n $rule ]] || continue
    # shellcheck disable=SC2086 # rule is iptables -S output: re-split it into words
    eval "nsenter -t $pid -n iptables -w -D ${rule#-A }"
  done < <(nsenter -t "$pid" -n iptables -w -S 2>/dev/null | grep -- "$RULE_TAG" || true)
}

# data_dir N: the host path of node N's /data (its volume: nodes.conf, dump.rdb, appendonlydir/).
# The scripts run as root and change files there only for the faults that mean to (restart-empty,
# restart-stale), never on a normal start.
data_dir() {
  local d
  d=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Source}}{{end}}{{end}}' "$(cname "$1")" 2>/dev/null || true)
  [[ -n $d && -d $d ]] || die "no data dir for redis-$1: /data of $(cname "$1") is not mounted (stack down? docker/chaos/status)"
  echo "$d"
}

# info_field N SECTION FIELD: one field of INFO SECTION on node N ("" if unreachable).
info_field() { rcli "$1" info "$2" | sed -n "s/^$3://p"; }

# bgsave N: BGSAVE on node N and wait until it finished: rdb_saves grew, rdb_bgsave_in_progress:0
# and rdb_last_bgsave_status:ok. Then node N's dump.rdb holds its dataset of now, and a later
# restart from that file rewinds to it. ("BGSAVE SCHEDULE": a running AOF rewrite delays it.)
bgsave() {
  local n=$1 before r
  before=$(info_field "$n" persistence rdb_saves)
  [[ $before =~ ^[0-9]+$ ]] || die "redis-$n: no rdb_saves in INFO persistence (unreachable?)"
  r=$(rcli "$n" bgsave schedule)
  [[ $r == *"Background saving"* ]] || die "redis-$n: BGSAVE refused: ${r:-no answer}"
  wait_until "$WAIT_TIMEOUT" bgsave_done "$n" "$before" || die "redis-$n: BGSAVE did not finish within ${WAIT_TIMEOUT}s"
}
# bgsave_done N SAVES: a BGSAVE finished on node N since INFO said rdb_saves:SAVES (dies if it failed).
bgsave_done() {
  local out saves
  out=$(rcli "$1" info persistence)
  [[ $out == *rdb_bgsave_in_progress:0* ]] || return 1
  saves=$(sed -n 's/^rdb_saves://p' <<<"$out")
  ((${saves:-0} > $2)) || return 1
  [[ $out == *rdb_last_bgsave_status:ok* ]] || die "redis-$1: BGSAVE failed (rdb_last_bgsave_status is not ok; docker logs $(cname "$1"))"
}

# probe_wait N: on master N, write a key of its own slots and WAIT 1 300 on the same connection;
# prints the number of replicas that acknowledged (0 when the master is cut off from its replica).
probe_wait() {
  local n=$1 key
  key=$(probe_key "$n") || return 1
  printf 'SET %s probe\nWAIT 1 300\n' "$key" | rcli "$n" | tail -1
}
# probe_key N: a key that hashes to a slot owned by node N (one redis-cli call for 400 candidates).
probe_key() {
  local n=$1 ranges
  ranges=$(masters "$n" | awk -v n="$n" '$1 == n { $1 = $2 = ""; print }')
  [[ -n $ranges ]] || return 1
  seq 0 399 | sed 's/^/CLUSTER KEYSLOT chaos-probe-/' | rcli "$n" |
    awk -v ranges="$ranges" 'BEGIN { k = split(ranges, rs, " ") }
      { for (i = 1; i <= k; i++) { split(rs[i], r, "-"); if (r[2] == "") r[2] = r[1]
          if ($1 >= r[1] && $1 <= r[2]) { print "chaos-probe-" NR - 1; exit } } }'
}

# record KIND key=value...: one JSON line to $CHAOS_LOG (if set) for the run's fault timeline:
# fault, start (the caller's $t0, when the fault was injected), end (now), then the key=values.
record() {
  [[ -n ${CHAOS_LOG:-} ]] || return 0
  local kind=$1 kv out t
  shift
  # shellcheck disable=SC2154 # t0: set by the calling script when it injected the fault
  t=${t0:-$(now_ms)}
  out="{\"fault\":\"$kind\",\"start\":\"$(date -u -d "@${t:0:-3}.${t: -3}" +%FT%T.%3NZ)\",\"end\":\"$(date -u +%FT%T.%3NZ)\""
  for kv in "$@"; do out+=",\"${kv%%=*}\":\"${kv#*=}\""; done
  echo "$out}" >>"$CHAOS_LOG"
}
