package io.shardseq;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Hands out unique IDs of one namespace of a shardseq server, in this process.
 *
 * <pre>{@code
 * try (ShardseqClient ids = new ShardseqClient(URI.create("http://127.0.0.1:8080"), "orders")) {
 *     long orderId = ids.next();
 *     long[] lineIds = ids.next(100);
 * }
 * }</pre>
 *
 * <p>The client takes leases from the server ({@code POST /v1/leases/{namespace}}): blocks of IDs
 * it hands out itself. Two are buffered, the one in use and the next, which a background thread
 * fetches as soon as the current one is taken into use. A lease is sized to last {@code target}
 * (a quarter) of its valid time at the current rate, between {@code minLease} and {@code
 * maxLease} IDs.
 *
 * <p><b>Time limit.</b> A lease's IDs are handed out only until {@code valid_ms} after its request
 * was sent, on {@link System#nanoTime()}; the rest are gaps. Two things enforce it, as in the Go
 * client: the refill thread marks the current lease expired at its deadline, and {@link #next()}
 * reads the clock itself once every {@link #DEFAULT_CLOCK_CHECK} (64) IDs of a lease (its first
 * included), {@link #next(int)} once per call (and per lease it moves to). The second catches
 * what the first cannot: a process suspended past the deadline (SIGSTOP, a VM paused, a long GC)
 * whose caller threads run again before the refill thread. The tolerance: after the deadline, at
 * most 63 more IDs of that lease are handed out (plus one per other thread taking an ID at the
 * moment of the check), each of them taken with no clock check due; an ID whose check passed may
 * reach the caller after the deadline by the time the call takes to return. Reading {@code
 * nanoTime} on every call costs several times an ID (about 45 ns on the CI VM, against 3 to 7 ns
 * for {@code AtomicLong.incrementAndGet()}); {@link Builder#clockCheckEvery(int)} 1 does it, for
 * callers who want no ID at all handed out after the deadline. Uniqueness never depends on it;
 * only the order window does.
 *
 * <p><b>Errors</b> are {@link ShardseqException}s. A server that is down or answers 503/429 is
 * retried with exponential backoff (50 ms doubling to 2 s, jittered, at least its Retry-After)
 * while a caller waits up to {@code retryFor} (10 s); then the caller gets a {@link
 * ShardseqException.Unavailable} naming the server, the attempts and the last error. Errors no
 * retry fixes (a bad token, a deleted namespace) are thrown at once.
 *
 * <p>Thread-safe; {@link #next()} takes no lock. {@link #close()} is idempotent.
 */
public final class ShardseqClient implements AutoCloseable {
    /** The largest count of one lease the server grants. */
    public static final int MAX_LEASE = 1_000_000;
    /** The largest batch of {@link #next(int)}. */
    public static final int MAX_BATCH = 1 << 20;
    /** {@link #next()} reads the clock once per this many IDs of a lease by default (Go's staleCheck). */
    public static final int DEFAULT_CLOCK_CHECK = 64;

    private static final System.Logger LOG = System.getLogger("io.shardseq");

    /** A lease being handed out. Only {@code pos} and {@code expired} change. */
    private static final class Segment {
        final Lease lease;
        final long first, step, count, deadline;
        final boolean limited;
        // k & mask == 0: the k-th ID reads the clock first (every ID when 0; the
        // first ID only when the lease has no time limit).
        final long mask;
        final AtomicLong pos = new AtomicLong();
        volatile boolean expired;
        long since; // nanoTime when it became current; under the lock

        Segment(Lease l, long checkMask) {
            lease = l;
            mask = l.limited() ? checkMask : Long.MAX_VALUE;
            first = l.first();
            step = l.step();
            count = l.count();
            limited = l.limited();
            deadline = l.sentNanos() + l.validNanos();
        }

        Segment() { // empty: the state before the first lease and after close
            lease = null;
            mask = 0;
            first = 0;
            step = 1;
            count = 0;
            limited = false;
            deadline = 0;
        }

        boolean live(long now) {
            return !limited || now - deadline < 0;
        }
    }

    private final URI server;
    private final String namespace;
    private final URI leaseURI;
    private final String token;
    private final int minLease, maxLease;
    private final double target;
    private final Duration timeout;
    private final long retryForNanos;
    private final long checkMask; // 0: the clock on every call
    private final LongSupplier clock; // System::nanoTime, or a test's
    private final Consumer<Lease> onLease;
    private final HttpClient http;

    private volatile Segment cur = new Segment();
    private final Object lock = new Object();
    // Under lock:
    private Lease next;
    private boolean want;
    private long size;
    private long validNanos = 400_000_000L;
    private boolean unlimited;
    private double rate;
    private ShardseqException err;
    private long errSeq;
    private int attempts;
    private boolean closed;
    private long leases, expiredLeases;

    final Thread refiller; // package-private: a test waits for it to sleep

    /** A client of namespace on the server at server (http://host:port), without a token. */
    public ShardseqClient(URI server, String namespace) {
        this(builder(server, namespace));
    }

    /** A client of namespace on the server at server, with a bearer token (null: none). */
    public ShardseqClient(URI server, String namespace, String token) {
        this(builder(server, namespace).token(token));
    }

    /** A builder for the options beyond server, namespace and token. */
    public static Builder builder(URI server, String namespace) {
        return new Builder(server, namespace);
    }

    private ShardseqClient(Builder b) {
        String scheme = b.server.getScheme();
        if (!"http".equals(scheme) && !"https".equals(scheme) || b.server.getHost() == null) {
            throw new IllegalArgumentException("shardseq: server " + b.server + ": want http://host:port or https://host:port");
        }
        if (b.namespace == null || b.namespace.isEmpty()) {
            throw new IllegalArgumentException("shardseq: namespace is empty");
        }
        if (!(1 <= b.minLease && b.minLease <= b.maxLease && b.maxLease <= MAX_LEASE)) {
            throw new IllegalArgumentException("shardseq: want 1 <= minLease <= maxLease <= " + MAX_LEASE);
        }
        if (b.leaseSize < b.minLease || b.leaseSize > b.maxLease) {
            throw new IllegalArgumentException("shardseq: leaseSize " + b.leaseSize + ": want minLease..maxLease");
        }
        if (!(b.target > 0 && b.target < 1)) {
            throw new IllegalArgumentException("shardseq: target " + b.target + ": want a fraction between 0 and 1");
        }
        if (b.clockCheckEvery < 1 || Integer.bitCount(b.clockCheckEvery) != 1) {
            throw new IllegalArgumentException("shardseq: clockCheckEvery " + b.clockCheckEvery + ": want a power of two");
        }
        server = b.server;
        namespace = b.namespace;
        String base = server.toString().replaceAll("/+$", "");
        leaseURI = URI.create(base + "/v1/leases/" + URLEncoder.encode(namespace, StandardCharsets.UTF_8).replace("+", "%20"));
        token = b.token;
        minLease = b.minLease;
        maxLease = b.maxLease;
        size = b.leaseSize;
        target = b.target;
        timeout = b.timeout;
        retryForNanos = b.retryFor.toNanos();
        checkMask = b.clockCheckEvery - 1;
        clock = b.clock;
        onLease = b.onLease;
        http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(timeout).build();
        refiller = new Thread(this::run, "shardseq-refill " + namespace);
        refiller.setDaemon(true);
        refiller.start();
    }

    /** Returns a new ID. Throws a {@link ShardseqException} when none can be had. */
    public long next() {
        Segment s = cur;
        long k = s.pos.getAndIncrement();
        if ((k & s.mask) != 0 && k < s.count && !s.expired) {
            return s.first + k * s.step; // no clock reading due for this ID
        }
        return checkedNext(s, k);
    }

    /** next() for an ID whose clock check is due, or past the lease's end. */
    private long checkedNext(Segment s, long k) {
        if (k < s.count && !s.expired) {
            if (s.live(clock.getAsLong())) {
                return s.first + k * s.step;
            }
            s.expired = true;
        }
        return slowNext(s);
    }

    private long slowNext(Segment s) {
        for (;;) {
            advance(s);
            s = cur;
            long k = s.pos.getAndIncrement();
            if (k < s.count && !s.expired) {
                if (s.live(clock.getAsLong())) {
                    return s.first + k * s.step;
                }
                s.expired = true; // for the other callers too
            }
        }
    }

    /** Returns n new IDs (1 to MAX_BATCH), increasing within each lease they came from. */
    public long[] next(int n) {
        if (n < 1 || n > MAX_BATCH) {
            throw new IllegalArgumentException("shardseq: next(" + n + "): want 1 to " + MAX_BATCH);
        }
        long[] out = new long[n];
        int got = 0;
        while (got < n) {
            Segment s = cur;
            // One clock reading per call (and per lease moved to): a batch is one event.
            if (!s.expired && !s.live(clock.getAsLong())) {
                s.expired = true; // for the other callers too
            }
            if (!s.expired) {
                long want = n - got;
                long k = s.pos.getAndAdd(want);
                long stop = Math.min(k + want, s.count);
                for (; k < stop; k++) {
                    out[got++] = s.first + k * s.step;
                }
                if (got == n) {
                    return out;
                }
            }
            advance(s);
        }
        return out;
    }

    /** The size of the next lease asked for. */
    public long leaseSize() {
        synchronized (lock) {
            return size;
        }
    }

    /** Leases received so far. */
    public long leases() {
        synchronized (lock) {
            return leases;
        }
    }

    /** Leases dropped before they were used up, their time past. */
    public long expiredLeases() {
        synchronized (lock) {
            return expiredLeases;
        }
    }

    /** Whether the refill thread has nothing to fetch (it then sleeps, watching the deadline); for tests. */
    boolean refillIdle() {
        synchronized (lock) {
            return closed || !want || next != null;
        }
    }

    /** Stops the background thread and drops the leases (their IDs are gaps). Idempotent. */
    @Override
    public void close() {
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            next = null;
            cur = new Segment();
            lock.notifyAll();
        }
        if (Thread.currentThread() != refiller) {
            refiller.interrupt(); // an HTTP request in flight ends now
            try {
                refiller.join(timeout.toMillis() + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public String toString() {
        return "ShardseqClient(" + server + ", " + namespace + ")";
    }

    /** Replaces old (used up or out of time) with the next lease, waiting for one if needed. */
    private void advance(Segment old) {
        synchronized (lock) {
            if (cur != old && !closed) {
                return; // another thread advanced already
            }
            if (old.lease != null) {
                account(old, clock.getAsLong());
            }
            long seq0 = errSeq;
            long giveUp = System.nanoTime() + retryForNanos;
            for (;;) {
                if (closed) {
                    throw new ShardseqException.Closed("shardseq: client of " + server + " namespace " + namespace + " is closed");
                }
                if (cur != old) {
                    return; // another caller installed a lease while this one waited
                }
                Lease l = next;
                if (l != null) {
                    next = null;
                    want = true;
                    lock.notifyAll();
                    Segment s = new Segment(l, checkMask);
                    long t = clock.getAsLong();
                    if (s.live(t)) {
                        s.since = t;
                        cur = s;
                        return;
                    }
                    expiredLeases++; // it came too early for the rate: smaller ones next
                    size = Math.max(minLease, size / 2);
                    continue;
                }
                if (err != null && errSeq > seq0 && !ShardseqException.retryable(err)) {
                    throw err;
                }
                want = true;
                lock.notifyAll();
                long left = giveUp - System.nanoTime();
                if (left <= 0) {
                    throw unavailable();
                }
                try {
                    lock.wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new ShardseqException.Unavailable("shardseq: interrupted waiting for a lease", 0, e);
                }
            }
        }
    }

    /** Learns the rate from the lease that ends now and sizes the next one. Under lock. */
    private void account(Segment s, long now) {
        if (s.since == 0) {
            return;
        }
        long used = Math.min(s.pos.get(), s.count);
        if (used < s.count) {
            expiredLeases++;
        }
        double secs = Math.max((now - s.since) / 1e9, 1e-4);
        double r = used / secs;
        // Up at once, down slowly: a burst must not wait a round trip per lease.
        rate = r > rate ? r : 0.7 * rate + 0.3 * r;
        double valid = unlimited ? 2.0 : validNanos / 1e9;
        size = (long) Math.min(maxLease, Math.max(minLease, rate * valid * target));
    }

    private ShardseqException.Unavailable unavailable() {
        String msg = "shardseq: no lease of namespace " + namespace + " from " + server + " in "
                + retryForNanos / 1_000_000 + "ms (" + attempts + " failed attempts in a row)";
        if (err != null) {
            msg += "; last error: " + err.getMessage();
        }
        return new ShardseqException.Unavailable(msg, "unavailable", err != null ? err.status() : 0);
    }

    // The background thread.

    private void run() {
        for (;;) {
            long count;
            Segment watch;
            synchronized (lock) {
                while (!closed && (!want || next != null)) {
                    // Mark the current lease expired at its deadline, for clockCheckEvery > 1:
                    // callers then stop at it without a clock check due.
                    watch = cur;
                    long wait = 0;
                    if (checkMask != 0 && watch.limited && !watch.expired) {
                        long left = watch.deadline - clock.getAsLong();
                        if (left <= 0) {
                            watch.expired = true;
                        } else {
                            wait = Math.max(1, left / 1_000_000 + 1);
                        }
                    }
                    try {
                        lock.wait(wait);
                    } catch (InterruptedException e) {
                        if (closed) {
                            return;
                        }
                    }
                }
                if (closed) {
                    return;
                }
                count = size;
            }
            Lease l;
            try {
                l = fetch(count);
            } catch (RuntimeException re) {
                // Anything fetch did not expect (the HTTP client's own
                // runtime errors included) is a failed attempt, never the
                // end of the background thread: callers would wait for it.
                ShardseqException e = re instanceof ShardseqException se ? se
                        : new ShardseqException.Unavailable("cannot lease from " + server + ": " + re, 0, re);
                synchronized (lock) {
                    if (closed) {
                        return;
                    }
                    err = e;
                    errSeq++;
                    attempts++;
                    if (!ShardseqException.retryable(e)) {
                        want = false; // until a caller asks again
                        lock.notifyAll();
                        continue;
                    }
                    double d = Math.min(2.0, 0.05 * Math.pow(2, Math.min(attempts - 1, 6)))
                            * ThreadLocalRandom.current().nextDouble(0.5, 1.0);
                    if (e instanceof RetryAfter ra) {
                        d = Math.max(d, Math.min(ra.retryAfter(), 2.0));
                    }
                    LOG.log(System.Logger.Level.WARNING, "shardseq: lease of {0} from {1} failed (attempt {2}; next in {3}s): {4}",
                            namespace, server, attempts, String.format("%.2f", d), e.getMessage());
                    lock.notifyAll();
                    // Waiting callers notify too: wait out the whole delay.
                    long until = System.nanoTime() + (long) (d * 1e9);
                    for (long left; !closed && (left = until - System.nanoTime()) > 0;) {
                        try {
                            lock.wait(Math.max(1, left / 1_000_000));
                        } catch (InterruptedException ie) {
                            if (closed) {
                                return;
                            }
                        }
                    }
                }
                continue;
            }
            if (onLease != null) {
                onLease.accept(l);
            }
            synchronized (lock) {
                if (closed) {
                    return;
                }
                if (attempts > 0) {
                    LOG.log(System.Logger.Level.WARNING, "shardseq: leases of {0} from {1} again after {2} failed attempts",
                            namespace, server, attempts);
                }
                attempts = 0;
                err = null;
                leases++;
                unlimited = !l.limited();
                if (l.limited()) {
                    validNanos = l.validNanos();
                }
                next = l;
                want = false;
                lock.notifyAll();
            }
        }
    }

    /** An Unavailable or TooManyNamespaces answer with its Retry-After. */
    private interface RetryAfter {
        double retryAfter();
    }

    private static final class UnavailableAfter extends ShardseqException.Unavailable implements RetryAfter {
        private static final long serialVersionUID = 1L;
        private final double after;

        UnavailableAfter(String message, String code, int status, double after) {
            super(message, code, status);
            this.after = after;
        }

        @Override
        public double retryAfter() {
            return after;
        }
    }

    private Lease fetch(long count) {
        HttpRequest.Builder rb = HttpRequest.newBuilder(URI.create(leaseURI + "?count=" + count))
                .timeout(timeout)
                .header("Accept", "application/json")
                .header("User-Agent", "shardseq-java")
                .POST(HttpRequest.BodyPublishers.noBody());
        if (token != null && !token.isEmpty()) {
            rb.header("Authorization", "Bearer " + token);
        }
        HttpRequest req = rb.build();
        long sent = clock.getAsLong();
        HttpResponse<String> resp;
        try {
            resp = http.send(req, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ShardseqException.Unavailable("cannot reach " + server + ": " + e, 0, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ShardseqException.Unavailable("interrupted", 0, e);
        }
        String body = resp.body();
        if (resp.statusCode() != 200) {
            String code = Json.string(body, "code");
            String text = Json.string(body, "error");
            if (text == null) {
                text = body.length() > 200 ? body.substring(0, 200) : body;
            }
            String msg = server + ": " + resp.statusCode() + " " + (code == null ? "" : code) + ": " + text;
            ShardseqException e = ShardseqException.fromAnswer(resp.statusCode(), code, msg);
            String ra = resp.headers().firstValue("Retry-After").orElse("");
            if (ra.matches("\\d+") && e instanceof ShardseqException.Unavailable) {
                e = new UnavailableAfter(msg, e.code(), e.status(), Double.parseDouble(ra));
            }
            throw e;
        }
        try {
            long first = Json.number(body, "first");
            long step = Json.number(body, "step");
            long n = Json.number(body, "count");
            long validMs = Json.number(body, "valid_ms");
            int shard = (int) Json.number(body, "shard");
            boolean limited = Json.bool(body, "limited");
            if (first < 1 || step < 1 || n < 1 || validMs < 0) {
                throw new IllegalArgumentException("first, step and count must be positive");
            }
            return new Lease(namespace, shard, first, step, n, sent, validMs * 1_000_000L, limited);
        } catch (IllegalArgumentException e) {
            throw new ShardseqException(server + ": bad lease answer " + body + ": " + e.getMessage(), "bad_response",
                    resp.statusCode(), e);
        }
    }

    /** Options of a client; every one has a working default. */
    public static final class Builder {
        private final URI server;
        private final String namespace;
        private String token;
        private int leaseSize = 1000, minLease = 100, maxLease = MAX_LEASE;
        private double target = 0.25;
        private Duration timeout = Duration.ofSeconds(5), retryFor = Duration.ofSeconds(10);
        private int clockCheckEvery = DEFAULT_CLOCK_CHECK;
        private Consumer<Lease> onLease;
        private LongSupplier clock = System::nanoTime;

        private Builder(URI server, String namespace) {
            this.server = Objects.requireNonNull(server, "server");
            this.namespace = Objects.requireNonNull(namespace, "namespace");
        }

        /** A bearer token of the server's --token-file; null or empty: none. */
        public Builder token(String token) {
            this.token = token;
            return this;
        }

        /** The first lease's size (default 1000). */
        public Builder leaseSize(int n) {
            leaseSize = n;
            return this;
        }

        /** Bounds of the adaptive lease size (defaults 100 and 1,000,000). */
        public Builder leaseBounds(int min, int max) {
            minLease = min;
            maxLease = max;
            return this;
        }

        /** The fraction of its valid time a lease should last at the current rate (default 0.25). */
        public Builder target(double fraction) {
            target = fraction;
            return this;
        }

        /** Bounds one HTTP request and its connection (default 5s). */
        public Builder timeout(Duration d) {
            timeout = Objects.requireNonNull(d);
            return this;
        }

        /** How long a caller waits for a lease through retries before Unavailable (default 10s). */
        public Builder retryFor(Duration d) {
            retryFor = Objects.requireNonNull(d);
            return this;
        }

        /**
         * {@link ShardseqClient#next()} reads the clock once every k IDs of a lease (a power of
         * two; default {@link ShardseqClient#DEFAULT_CLOCK_CHECK}, 64): after a suspended process
         * resumes, at most k-1 more IDs of a lease past its time are handed out. 1 reads it on
         * every call (no ID after the deadline, several times slower). See the class comment.
         */
        public Builder clockCheckEvery(int k) {
            clockCheckEvery = k;
            return this;
        }

        /** The monotonic clock of the leases' time limits, in nanoseconds; tests inject a fake. */
        Builder clock(LongSupplier nanos) {
            clock = Objects.requireNonNull(nanos);
            return this;
        }

        /** Called with every lease received, before its IDs are handed out, on the refill thread. */
        public Builder onLease(Consumer<Lease> f) {
            onLease = f;
            return this;
        }

        public ShardseqClient build() {
            return new ShardseqClient(this);
        }
    }
}
