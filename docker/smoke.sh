#!/usr/bin/env bash
# smoke.sh — CI smoke test of the docker stack: build both images, bring up the Redis Cluster and
# the two shardseq servers, run the checker while 4 faults of different kinds are injected
# (kill-master, restart-stale, partition-master, restart-empty: crash, rewind to an older dump
# file, partition, data loss), both servers restarted after each fault (fresh processes serve
# next: --fresh-servers), and require 0 duplicate IDs. The stack is always torn down (down -v),
# also on failure or timeout; on failure the logs of the shardseq servers, the checker and every
# container that exited non-zero are printed. Target runtime ~4-5 minutes (checker 210 s, the sum of
# the faults' costs in chaos/run; SMOKE_DURATION overrides it); hard limit 8 minutes
# (SMOKE_TIMEOUT seconds). A run that could not inject all 4 faults under load fails.
# The Redis nodes run cluster-require-full-coverage yes, Redis's default, as users run it
# (REDIS_FULL_COVERAGE=no runs the setting shardseq recommends); the run checks the nodes really
# run the setting asked for.
#
# usage: docker/smoke.sh [extra docker/chaos/run options, e.g. --no-build, --persistence rdb]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start=$(date +%s)
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  # chaos/run tears down by itself; this is the safety net if it was killed hard.
  if docker ps -aq --filter label=com.docker.compose.project=shardseq | grep -q .; then
    "$here/chaos/heal" --no-wait >/dev/null 2>&1 || true
    if docker compose version >/dev/null 2>&1; then dc=(docker compose); else dc=(docker-compose); fi
    "${dc[@]}" -p shardseq -f "$here/compose.yml" --profile check down -v --remove-orphans >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
export REDIS_FULL_COVERAGE=${REDIS_FULL_COVERAGE:-yes}
[[ $REDIS_FULL_COVERAGE =~ ^(yes|no)$ ]] || { echo "smoke: REDIS_FULL_COVERAGE=$REDIS_FULL_COVERAGE: want yes or no" >&2; exit 2; }
echo "smoke: Redis nodes with cluster-require-full-coverage $REDIS_FULL_COVERAGE" >&2
rc=0
log=$(mktemp)
kinds=kill-master,restart-stale,partition-master,restart-empty
faults=4
args=(--build --faults "$faults" --kinds "$kinds" --fresh-servers)
[[ -z ${SMOKE_DURATION:-} ]] || args+=(--duration "$SMOKE_DURATION")
timeout -s TERM "${SMOKE_TIMEOUT:-480}" "$here/chaos/run" "${args[@]}" "$@" 2>&1 | tee "$log" || rc=$?
# The smoke scenario promises four faults of different kinds under load, a rewind among them: a
# run that had to skip one (a slow machine) does not count as a pass.
if ((rc == 0)) && ! grep -q "$faults of $faults fault(s) injected" "$log"; then
  echo "smoke: fewer than $faults faults were injected under load; raise SMOKE_DURATION (e.g. SMOKE_DURATION=240s)" >&2
  rc=1
fi
if ((rc == 0)) && ! grep -q "run: cluster-require-full-coverage $REDIS_FULL_COVERAGE on every node" "$log"; then
  echo "smoke: the nodes did not all run cluster-require-full-coverage $REDIS_FULL_COVERAGE (see the run's line above)" >&2
  rc=1
fi
if ((rc == 0)) && ! grep -q '"fault":"restart-stale".*"rewound":"yes"' "$log"; then
  echo "smoke: the restart-stale fault did not rewind (see its line above); the smoke needs one real rewind" >&2
  rc=1
fi
rm -f "$log"
if ((rc == 0)); then
  echo "smoke: PASS in $(($(date +%s) - start))s"
else
  ((rc != 124)) || echo "smoke: timed out after ${SMOKE_TIMEOUT:-480}s" >&2
  echo "smoke: FAIL (exit $rc) after $(($(date +%s) - start))s" >&2
fi
exit "$rc"
