#!/usr/bin/env bash
# http-vs-bare.sh: issue 22's measure. `shardseq serve` on a local cluster
# against the bare handler (shardseq-lab bare: same body and headers from an
# atomic counter), single-ID POSTs with wrk, the two runs interleaved so that
# load from neighbours falls on both; prints each round and the median ratio.
#
#   lab/scripts/http-vs-bare.sh            # from the repository root or anywhere
#   ROUNDS=3 DURATION=10s CONNS=50 THREADS=2 CLUSTER_PORT=7650 SERVE_PORT=7670 BARE_PORT=7671
#
# On a shared machine run it under clusterlock: clusterlock lab/scripts/http-vs-bare.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
CLUSTER_PORT=${CLUSTER_PORT:-7650}
SERVE_PORT=${SERVE_PORT:-7670}
BARE_PORT=${BARE_PORT:-7671}
NS=${NS:-bench}

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/http-vs-bare.XXXXXX)
serve_pid= bare_pid= cluster_up=
cleanup() {
	set +e
	# By PID: only the processes this script started.
	for pid in $serve_pid $bare_pid; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	[ -n "$cluster_up" ] && bin/shardseq cluster down --dir "$tmp/cluster" >/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building bin/shardseq and bin/shardseq-lab" >&2
make -s build
(cd lab && go build -o ../bin/shardseq-lab ./cmd/shardseq-lab)

cluster_up=1
addrs=$(bin/shardseq cluster up --dir "$tmp/cluster" --port "$CLUSTER_PORT")
bin/shardseq serve --redis "$addrs" --listen "127.0.0.1:$SERVE_PORT" --log-level warn 2>"$tmp/serve.log" &
serve_pid=$!
bin/shardseq-lab bare --listen "127.0.0.1:$BARE_PORT" 2>"$tmp/bare.log" &
bare_pid=$!

# Poll each until it answers an ID (serve: its namespace opened), 30 s at most.
wait_ids() {
	local url=$1 deadline=$((SECONDS + 30))
	until curl -fsS -X POST "$url" -o /dev/null 2>/dev/null; do
		if [ $SECONDS -ge $deadline ]; then
			echo "no answer from $url within 30 s; logs in $tmp" >&2
			cat "$tmp"/*.log >&2
			exit 1
		fi
		sleep 0.1
	done
}
serve_url="http://127.0.0.1:$SERVE_PORT/v1/ids/$NS"
bare_url="http://127.0.0.1:$BARE_PORT/v1/ids/$NS"
wait_ids "$serve_url"
wait_ids "$bare_url"
echo "serve: $(curl -sS -X POST "$serve_url")" >&2
echo "bare:  $(curl -sS -X POST "$bare_url")" >&2

printf 'wrk.method = "POST"\n' >"$tmp/post.lua"
# run URL DURATION: wrk's output; fails on socket errors or non-2xx answers,
# so a broken server cannot pass for a fast one.
run() {
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$2" --latency -s "$tmp/post.lua" "$1")
	if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
		echo "$out" >&2
		echo "errors against $1" >&2
		exit 1
	fi
	echo "$out"
}
rps() { awk '/^Requests\/sec:/ {print $2}'; }
p99() { awk '$1 == "99%" {print $2}'; }

echo "warm-up: $WARMUP each" >&2
run "$serve_url" "$WARMUP" >/dev/null
run "$bare_url" "$WARMUP" >/dev/null

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$THREADS -c$CONNS -d$DURATION --latency -s post.lua, $ROUNDS rounds, serve then bare"
printf '%-6s %12s %10s %12s %10s %7s\n' round serve_rps serve_p99 bare_rps bare_p99 ratio
ratios=()
for i in $(seq 1 "$ROUNDS"); do
	s=$(run "$serve_url" "$DURATION")
	b=$(run "$bare_url" "$DURATION")
	sr=$(rps <<<"$s") br=$(rps <<<"$b")
	r=$(awk -v s="$sr" -v b="$br" 'BEGIN {printf "%.3f", s / b}')
	ratios+=("$r")
	printf '%-6s %12s %10s %12s %10s %7s\n' "$i" "$sr" "$(p99 <<<"$s")" "$br" "$(p99 <<<"$b")" "$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median ratio serve/bare: $median (goal >= 0.85)"
