"""The Python side of the conformance suite (clients/conformance_test.go).

    conformance_driver.py MODE SERVER NAMESPACE TOKEN [RETRY_FOR]

MODE run: take IDs until stdin closes, 10 a millisecond; slow: one a
millisecond, from fixed leases of 100,000 (so a lease always has IDs left when
its time ends); once: one ID, or the error. TOKEN "-" is none. Output lines,
times on time.monotonic() in microseconds:

    L first step count deadline      a lease received (deadline -1: none)
    I id start end                   an ID, with when next() was called and returned
    E code status elapsed_ms message an error (status 0: no answer)
    D                                done
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import shardseq  # noqa: E402

out_lock = threading.Lock()
out = sys.stdout


def us(t: float) -> int:
    return int(t * 1e6)


def emit(line: str) -> None:
    with out_lock:
        out.write(line + "\n")


def on_lease(lease: shardseq.Lease) -> None:
    dl = -1 if lease.deadline == float("inf") else us(lease.deadline)
    emit(f"L {lease.first} {lease.step} {lease.count} {dl}")
    with out_lock:
        out.flush()


def main() -> None:
    mode, server, ns, token = sys.argv[1:5]
    retry_for = float(sys.argv[5]) if len(sys.argv) > 5 else 10.0
    kw = {"on_lease": on_lease, "retry_for": retry_for}
    if mode == "slow":
        kw.update(lease_size=100_000, min_lease=100_000, max_lease=100_000)
    stop = threading.Event()
    if mode != "once":
        def watch_stdin() -> None:
            sys.stdin.read()
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    per_ms = 10 if mode == "run" else 1
    with shardseq.Client(server, ns, None if token == "-" else token, **kw) as c:
        while True:
            for _ in range(per_ms):
                t0 = time.monotonic()
                try:
                    i = c.next()
                except shardseq.ShardseqError as e:
                    el = int((time.monotonic() - t0) * 1000)
                    emit(f"E {e.code} {e.status or 0} {el} {str(e).replace(chr(10), ' ')}")
                    break
                emit(f"I {i} {us(t0)} {us(time.monotonic())}")
            with out_lock:
                out.flush()
            if mode == "once" or stop.is_set():
                break
            time.sleep(0.001)
    emit("D")
    out.flush()


if __name__ == "__main__":
    main()
