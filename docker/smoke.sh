#!/usr/bin/env bash
# smoke.sh — CI smoke test of the docker stack: build both images, bring up the Redis Cluster and
# the two shardseq servers, run the checker for 100 s while 3 faults of different kinds are injected
# (kill-master, partition-master, restart-empty), and require 0 duplicate IDs. The stack is always
# torn down (down -v), also on failure or timeout; on failure the logs of the shardseq servers, the
# checker and every container that exited non-zero are printed. Target runtime ~4 minutes; hard
# limit 8 minutes (SMOKE_TIMEOUT seconds). Fewer than 3 injected faults fail the run.
#
# usage: docker/smoke.sh [extra docker/chaos/run options, e.g. --no-build]
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
rc=0
log=$(mktemp)
timeout -s TERM "${SMOKE_TIMEOUT:-480}" "$here/chaos/run" --build --faults 3 \
  --kinds kill-master,partition-master,restart-empty --duration "${SMOKE_DURATION:-170s}" "$@" 2>&1 | tee "$log" || rc=$?
# The smoke scenario promises three faults of different kinds under load: a
# run that had to skip one (a slow machine) does not count as a pass.
if ((rc == 0)) && ! grep -q '3 of 3 fault(s) injected' "$log"; then
  echo "smoke: fewer than 3 faults were injected under load; raise SMOKE_DURATION" >&2
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
