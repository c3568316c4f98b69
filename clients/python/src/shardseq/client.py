"""The shardseq client: IDs handed out in this process from leases.

A lease (``POST /v1/leases/{namespace}``) is a block of IDs
``first, first+step, ..., first+(count-1)*step`` that the server reserved for
this client, and a time limit: the client hands its IDs out only until
``valid_ms`` after it SENT the request (on ``time.monotonic()``), so that IDs
keep the server's order window; whatever is left then is dropped (gaps).
"""

import http.client
import itertools
import json
import logging
import math
import operator
import random
import threading
import time
import urllib.parse
from typing import Callable, List, NamedTuple, Optional

from .errors import (
    ClosedError,
    ShardseqError,
    UnavailableError,
    from_answer,
    retryable,
)

log = logging.getLogger("shardseq")

_monotonic = time.monotonic
_next = next

#: The largest count of one lease the server grants.
MAX_LEASE = 1_000_000
#: The largest batch of next_n.
MAX_BATCH = 1 << 20


class Lease(NamedTuple):
    """A block of IDs from the server, as received."""

    namespace: str
    shard: int
    first: int
    step: int
    count: int
    #: time.monotonic() when the request that brought it was sent.
    sent: float
    #: time.monotonic() after which none of its IDs is handed out;
    #: math.inf when the server has no order window.
    deadline: float

    def ids(self) -> range:
        return range(self.first, self.first + self.count * self.step, self.step)


class Client:
    """Hands out unique IDs of one namespace of a shardseq server.

    ``server`` is the server's base URL (``http://host:port`` or
    ``https://...``), ``namespace`` the namespace, ``token`` a bearer token of
    the server's ``--token-file`` (``None``: no token).

    Two leases are buffered: the one being handed out and the next, which a
    background thread fetches as soon as the current one is taken into use.
    Lease sizes follow the rate: a lease should last ``target`` of its valid
    time (default a quarter: 100 ms of IDs for the default 1 s window),
    between ``min_lease`` and ``max_lease`` IDs. When no lease can be had,
    the thread retries with exponential backoff (50 ms doubling to 2 s,
    jittered) while a caller waits, for up to ``retry_for`` seconds; then
    the caller gets an UnavailableError naming the server, the attempts and
    the last error. Errors no retry can fix (a bad token, a deleted
    namespace) are raised at once. ``timeout`` bounds one HTTP request.
    ``on_lease``, when given, is called with every Lease received before its
    IDs are handed out (for logs, metrics and tests), on the background
    thread.

    Thread-safe: one lock guards the buffers; it is never held across I/O.
    Use it as a context manager, or call close().
    """

    def __init__(
        self,
        server: str,
        namespace: str,
        token: Optional[str] = None,
        *,
        lease_size: int = 1000,
        min_lease: int = 100,
        max_lease: int = MAX_LEASE,
        target: float = 0.25,
        timeout: float = 5.0,
        retry_for: float = 10.0,
        on_lease: Optional[Callable[[Lease], None]] = None,
    ) -> None:
        u = urllib.parse.urlsplit(server)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"shardseq: server {server!r}: want http://host:port or https://host:port")
        if not 1 <= min_lease <= max_lease <= MAX_LEASE:
            raise ValueError(f"shardseq: want 1 <= min_lease ({min_lease}) <= max_lease ({max_lease}) <= {MAX_LEASE}")
        if not min_lease <= lease_size <= max_lease:
            raise ValueError(f"shardseq: lease_size {lease_size}: want min_lease..max_lease ({min_lease}..{max_lease})")
        if not 0 < target < 1:
            raise ValueError(f"shardseq: target {target}: want a fraction between 0 and 1")
        if timeout <= 0 or retry_for <= 0:
            raise ValueError("shardseq: timeout and retry_for must be positive")
        self.server = server.rstrip("/")
        self.namespace = namespace
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port
        self._path = (u.path.rstrip("/") + "/v1/leases/" + urllib.parse.quote(namespace, safe=""))
        self._headers = {"Accept": "application/json", "User-Agent": "shardseq-python"}
        if token:
            self._headers["Authorization"] = "Bearer " + token
        self._min, self._max, self._target = min_lease, max_lease, target
        self._timeout, self._retry_for = timeout, retry_for
        self._on_lease = on_lease
        self._conn: Optional[http.client.HTTPConnection] = None

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # The current lease: its IDs left, its deadline, its size and when
        # it was taken into use (for the rate).
        self._it = iter(())
        self._deadline = -math.inf
        self._cur_count = 0
        self._cur_since = 0.0
        self._next_lease: Optional[Lease] = None
        self._want = False  # the thread should fetch a next lease
        self._size = lease_size
        self._valid = 0.4  # seconds a lease lasts, learnt from the server
        self._rate = 0.0  # IDs per second, smoothed
        self._err: Optional[ShardseqError] = None  # the last failure of the thread
        self._err_seq = 0
        self._attempts = 0  # failed attempts in a row
        self._closed = False
        #: Leases received, and dropped unused or partly used (their time ran out).
        self.leases = 0
        self.expired = 0
        self._thread = threading.Thread(target=self._run, name="shardseq-refill", daemon=True)
        self._thread.start()

    # The hot path: one lock, one clock reading, one step of a range iterator.
    def next(self) -> int:
        """Returns a new ID. Raises a ShardseqError when none can be had."""
        with self._lock:
            if _monotonic() < self._deadline:
                try:
                    return _next(self._it)
                except StopIteration:
                    pass
            while True:
                self._advance()
                if _monotonic() < self._deadline:
                    try:
                        return _next(self._it)
                    except StopIteration:
                        pass

    def next_n(self, n: int) -> List[int]:
        """Returns n new IDs (1 <= n <= MAX_BATCH), increasing within each
        lease they came from."""
        if not isinstance(n, int) or not 1 <= n <= MAX_BATCH:
            raise ValueError(f"shardseq: next_n({n!r}): want 1 to {MAX_BATCH}")
        out: List[int] = []
        with self._lock:
            while True:
                if _monotonic() < self._deadline:
                    out.extend(itertools.islice(self._it, n - len(out)))
                    if len(out) == n:
                        return out
                self._advance()

    def close(self) -> None:
        """Stops the background thread and drops the leases (their IDs are
        gaps). Idempotent; next() afterwards raises ClosedError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._it, self._deadline, self._next_lease = iter(()), -math.inf, None
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(self._timeout + 1)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"shardseq.Client({self.server!r}, {self.namespace!r})"

    @property
    def lease_size(self) -> int:
        """The size of the next lease asked for."""
        return self._size

    # Under the lock from here to _run.

    def _advance(self) -> None:
        """Replaces the current lease (used up or out of time) with the next
        one, waiting for the thread if there is none."""
        now = _monotonic()
        if self._cur_count:
            self._account(now)
        seq0 = self._err_seq
        give_up = now + self._retry_for
        while True:
            if self._closed:
                raise ClosedError(f"shardseq: client of {self.server} namespace {self.namespace!r} is closed")
            lease = self._next_lease
            if lease is not None:
                self._next_lease = None
                self._want = True
                self._cond.notify_all()
                if _monotonic() < lease.deadline:
                    self._it = iter(lease.ids())
                    self._deadline = lease.deadline
                    self._cur_count, self._cur_since = lease.count, _monotonic()
                    return
                self.expired += 1  # it came too early for the rate: smaller ones next
                self._size = max(self._min, self._size // 2)
                continue
            if self._err is not None and self._err_seq > seq0 and not retryable(self._err):
                raise self._err
            self._want = True
            self._cond.notify_all()
            left = give_up - _monotonic()
            if left <= 0:
                raise self._unavailable()
            self._cond.wait(left)

    def _account(self, now: float) -> None:
        """Learns the rate from the lease that ends now and sizes the next."""
        left = operator.length_hint(self._it)
        used = self._cur_count - left
        if left:
            self.expired += 1
        self._cur_count = 0
        elapsed = max(now - self._cur_since, 1e-4)
        rate = used / elapsed
        # Up at once, down slowly: a burst must not wait a round trip per lease.
        self._rate = rate if rate > self._rate else 0.7 * self._rate + 0.3 * rate
        valid = self._valid if math.isfinite(self._valid) else 2.0
        self._size = int(min(self._max, max(self._min, self._rate * valid * self._target)))

    def _unavailable(self) -> UnavailableError:
        last = self._err
        msg = (f"shardseq: no lease of namespace {self.namespace!r} from {self.server} "
               f"in {self._retry_for:g}s ({self._attempts} failed attempts in a row)")
        if last is not None:
            msg += f"; last error: {last}"
        return UnavailableError(msg, status=last.status if last is not None else None)

    # The background thread.

    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._closed and (not self._want or self._next_lease is not None):
                        self._cond.wait()
                    if self._closed:
                        return
                    size = self._size
                try:
                    lease = self._fetch(size)
                except ShardseqError as e:
                    with self._lock:
                        self._err, self._err_seq = e, self._err_seq + 1
                        self._attempts += 1
                        if not retryable(e):
                            self._want = False  # until a caller asks again
                            self._cond.notify_all()
                            continue
                        delay = min(2.0, 0.05 * 2 ** min(self._attempts - 1, 6)) * random.uniform(0.5, 1.0)
                        delay = max(delay, min(getattr(e, "retry_after", 0.0), 2.0))
                        log.warning("shardseq: lease of %r from %s failed (attempt %d; next in %.2fs): %s",
                                    self.namespace, self.server, self._attempts, delay, e)
                        self._cond.notify_all()
                        # Waiting callers notify too: wait out the whole delay.
                        until = _monotonic() + delay
                        while not self._closed and _monotonic() < until:
                            self._cond.wait(until - _monotonic())
                    continue
                if self._on_lease is not None:
                    self._on_lease(lease)
                with self._lock:
                    if self._closed:
                        return
                    if self._attempts:
                        log.warning("shardseq: leases of %r from %s again after %d failed attempts",
                                    self.namespace, self.server, self._attempts)
                    self._attempts, self._err = 0, None
                    self.leases += 1
                    if math.isfinite(lease.deadline):
                        self._valid = lease.deadline - lease.sent
                    else:
                        self._valid = math.inf
                    self._next_lease, self._want = lease, False
                    self._cond.notify_all()
        finally:
            if self._conn is not None:
                self._conn.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _fetch(self, count: int) -> Lease:
        """One lease request. A kept-alive connection the server closed
        meanwhile is retried once on a new one (safe: a lease that never
        arrived is a gap)."""
        target = f"{self._path}?count={count}"
        for attempt in (0, 1):
            fresh = self._conn is None
            if fresh:
                self._conn = self._connect()
            conn = self._conn
            sent = _monotonic()
            try:
                conn.request("POST", target, headers=self._headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self._conn = None
                if attempt == 0 and not fresh:
                    continue
                raise UnavailableError(f"cannot reach {self.server}: {e}") from e
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                self._conn = None
            return self._decode(resp, body, sent)
        raise AssertionError("unreachable")

    def _decode(self, resp: http.client.HTTPResponse, body: bytes, sent: float) -> Lease:
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if resp.status != 200:
            code = doc.get("code") if isinstance(doc, dict) else None
            text = doc.get("error") if isinstance(doc, dict) else body[:200].decode("utf-8", "replace")
            err = from_answer(resp.status, code, f"{self.server}: {resp.status} {code or ''}: {text}")
            ra = resp.getheader("Retry-After")
            if ra and ra.isdigit():
                err.retry_after = float(ra)  # type: ignore[attr-defined]
            raise err
        try:
            first, step, count = int(doc["first"]), int(doc["step"]), int(doc["count"])
            limited, valid_ms = bool(doc["limited"]), int(doc["valid_ms"])
            shard = int(doc["shard"])
            if first < 1 or step < 1 or count < 1:
                raise ValueError("first, step and count must be positive")
        except (KeyError, TypeError, ValueError) as e:
            raise ShardseqError(f"{self.server}: bad lease answer {body[:200]!r}: {e}", code="bad_response",
                                status=resp.status) from e
        deadline = sent + valid_ms / 1000.0 if limited else math.inf
        return Lease(self.namespace, shard, first, step, count, sent, deadline)

