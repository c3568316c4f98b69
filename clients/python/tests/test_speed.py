"""next() against uuid.uuid4() in the same run, on one thread.

The goal (issue 21) is >= 1M IDs/s and >= 2x uuid4. The test asserts only a
floor that a loaded 2-core CI machine keeps (next() faster than uuid4); set
SHARDSEQ_SPEED_STRICT=1 to assert the goal. It prints the figures.
"""

import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tests.test_client import Stub  # noqa: E402

import shardseq  # noqa: E402


def rate(fn, seconds):
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(10000):
            fn()
        n += 10000
        t = time.perf_counter()
        if t >= end:
            return n / (t - t0)


class SpeedTest(unittest.TestCase):
    def test_next_vs_uuid4(self):
        stub = Stub(valid_ms=400)
        self.addCleanup(stub.close)
        with shardseq.Client(stub.url, "speed") as c:
            rate(c.next, 0.3)  # warm: the lease size follows the rate
            before = len(stub.requests)
            ours = rate(c.next, 1.0)
            ids = c.leases
            reqs = len(stub.requests) - before
            theirs = rate(uuid.uuid4, 1.0)
        per10k = reqs / (ours * 1.0) * 10000
        print(f"\nshardseq next(): {ours / 1e6:.2f}M IDs/s; uuid.uuid4(): {theirs / 1e6:.2f}M/s; "
              f"ratio {ours / theirs:.2f}; {reqs} lease requests in 1s = {per10k:.3f} per 10,000 IDs "
              f"({ids} leases in all)", file=sys.stderr)
        self.assertGreater(ours, theirs)
        if os.environ.get("SHARDSEQ_SPEED_STRICT"):
            self.assertGreaterEqual(ours, 1e6)
            self.assertGreaterEqual(ours / theirs, 2)
            self.assertLessEqual(per10k, 1)


if __name__ == "__main__":
    unittest.main()
