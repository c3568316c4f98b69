"""Unit tests of the Python client against a stub of the lease API.

    PYTHONPATH=clients/python/src python3 -m unittest discover -s clients/python/tests
"""

import http.server
import json
import logging
import os
import re
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import shardseq  # noqa: E402

logging.getLogger("shardseq").setLevel(logging.ERROR)


class Stub:
    """A lease server in a thread: hands out consecutive blocks of one
    shard of N=4, answers what the test sets."""

    def __init__(self, valid_ms=400, limited=True, token=None):
        self.valid_ms, self.limited, self.token = valid_ms, limited, token
        self.seq = 0
        self.requests = []  # (path, count)
        self.fail = []  # answers to give before the next success: (status, code)
        self.error = None  # (status, code) for every request
        self.retry_after = False  # send Retry-After: 1 with 429 and 503
        self.lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                u = urllib.parse.urlsplit(self.path)
                count = int(urllib.parse.parse_qs(u.query).get("count", ["0"])[0])
                with stub.lock:
                    stub.requests.append((u.path, count))
                    answer = stub.error or (stub.fail.pop(0) if stub.fail else None)
                    if stub.token and self.headers.get("Authorization") != "Bearer " + stub.token:
                        answer = (401, "unauthorized")
                    if answer is None:
                        first = stub.seq * 4 + 1
                        stub.seq += count
                        body = {"namespace": u.path.rsplit("/", 1)[1], "shard": 1, "first": first, "step": 4,
                                "count": count, "valid_ms": stub.valid_ms if stub.limited else 0,
                                "limited": stub.limited}
                        status = 200
                    else:
                        status, code = answer
                        body = {"error": "stub says " + code, "code": code}
                b = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(b)))
                if status in (429, 503) and stub.retry_after:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(b)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def eventually(test, fn, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.01)


class ClientTest(unittest.TestCase):
    def stub(self, **kw):
        s = Stub(**kw)
        self.addCleanup(s.close)
        return s

    def client(self, url, ns="orders", **kw):
        c = shardseq.Client(url, ns, **kw)
        self.addCleanup(c.close)
        return c

    def test_unique_and_ordered_in_one_thread(self):
        s = self.stub()
        c = self.client(s.url, min_lease=10, lease_size=10)
        got = [c.next() for _ in range(5000)] + c.next_n(3000)
        self.assertEqual(len(set(got)), len(got))
        self.assertEqual(got, sorted(got))  # one shard, consecutive blocks
        self.assertTrue(all(i % 4 == 1 for i in got))
        self.assertEqual(s.requests[0], ("/v1/leases/orders", 10))

    def test_threads(self):
        s = self.stub()
        c = self.client(s.url, min_lease=50, lease_size=50)
        out = [[] for _ in range(8)]

        def work(k):
            for _ in range(2000):
                out[k].append(c.next())
            out[k].extend(c.next_n(777))

        ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        flat = [i for o in out for i in o]
        self.assertEqual(len(flat), 8 * 2777)
        self.assertEqual(len(set(flat)), len(flat))

    def test_lease_size_adapts_and_prefetches(self):
        s = self.stub()
        c = self.client(s.url, min_lease=100, lease_size=100)
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:
            c.next_n(1000)
            n += 1000
        self.assertGreater(c.lease_size, 1000, "the lease size did not follow a high rate")
        # Steady: far fewer requests than leases of the first size.
        self.assertLess(len(s.requests), n / 1000)

    def test_expired_lease_is_dropped(self):
        s = self.stub(valid_ms=150)
        seen = []
        c = self.client(s.url, min_lease=1000, lease_size=1000, on_lease=seen.append)
        a = c.next()
        time.sleep(0.3)  # past the lease's 150 ms: what is left of it are gaps
        b = c.next()
        first = seen[0]
        self.assertIn(a, first.ids())
        for lease in seen:
            if b in lease.ids():
                self.assertGreater(lease.sent, first.sent + 0.15 - 1e-3)
                break
        else:
            self.fail("b from no lease")
        self.assertNotIn(b, first.ids())
        self.assertGreaterEqual(c.expired, 1)

    def test_deadline_counts_from_sent(self):
        s = self.stub(valid_ms=300)
        seen = []
        c = self.client(s.url, on_lease=seen.append)
        t0 = time.monotonic()
        c.next()
        lease = seen[0]
        self.assertGreaterEqual(lease.sent, t0)
        self.assertAlmostEqual(lease.deadline - lease.sent, 0.3, places=6)

    def test_unlimited(self):
        s = self.stub(limited=False)
        seen = []
        c = self.client(s.url, on_lease=seen.append)
        c.next()
        self.assertEqual(seen[0].deadline, float("inf"))

    def test_token(self):
        s = self.stub(token="sekrit")
        self.assertGreater(self.client(s.url, token="sekrit").next(), 0)
        with self.assertRaises(shardseq.UnauthorizedError) as cm:
            self.client(s.url, token="wrong").next()
        self.assertEqual(cm.exception.code, "unauthorized")
        self.assertEqual(cm.exception.status, 401)
        self.assertIsInstance(cm.exception, shardseq.ShardseqError)

    def test_namespace_deleted(self):
        s = self.stub()
        s.error = (404, "namespace_deleted")
        c = self.client(s.url)
        with self.assertRaises(shardseq.NamespaceDeletedError) as cm:
            c.next()
        self.assertIsInstance(cm.exception, shardseq.NamespaceNotFoundError)
        self.assertEqual((cm.exception.code, cm.exception.status), ("namespace_deleted", 404))
        s.error = None  # recreated: the client recovers
        self.assertGreater(c.next(), 0)

    def test_retries_unavailable(self):
        s = self.stub()
        s.fail = [(503, "unavailable"), (503, "unavailable"), (429, "too_many_namespaces")]
        c = self.client(s.url)
        self.assertGreater(c.next(), 0)
        self.assertEqual(len(s.requests), 4)

    def test_server_down_reported(self):
        s = self.stub()
        url = s.url
        s.close()  # nothing listens there now
        c = self.client(url, retry_for=0.5)
        t0 = time.monotonic()
        with self.assertRaises(shardseq.UnavailableError) as cm:
            c.next()
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.5)
        self.assertLess(took, 3)
        msg = str(cm.exception)
        self.assertIn(url, msg)
        self.assertIn("failed attempts", msg)
        attempts = int(re.search(r"\((\d+) failed attempts", msg).group(1))
        self.assertTrue(2 <= attempts <= 10, f"{attempts} attempts in 0.5s: no backoff?")
        self.assertIsNone(cm.exception.status)
        self.assertEqual(cm.exception.code, "unavailable")

    def test_close(self):
        s = self.stub()
        with shardseq.Client(s.url, "orders") as c:
            c.next()
        c.close()  # twice: nothing happens
        with self.assertRaises(shardseq.ClosedError):
            c.next()
        self.assertFalse(c._thread.is_alive())

    def test_bad_arguments(self):
        for kw in ({"min_lease": 0}, {"max_lease": 2_000_000}, {"lease_size": 10}, {"target": 1.0}):
            with self.assertRaises(ValueError):
                shardseq.Client("http://127.0.0.1:1", "orders", **kw)
        with self.assertRaises(ValueError):
            shardseq.Client("ftp://x", "orders")
        s = self.stub()
        c = self.client(s.url)
        for n in (0, -1, shardseq.MAX_BATCH + 1):
            with self.assertRaises(ValueError):
                c.next_n(n)

    def test_bad_answer(self):
        s = self.stub()
        s.error = (400, "bad_namespace")
        with self.assertRaises(shardseq.BadRequestError) as cm:
            self.client(s.url, "a:b").next()
        self.assertEqual(cm.exception.code, "bad_namespace")


if __name__ == "__main__":
    unittest.main()
