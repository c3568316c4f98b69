package io.shardseq;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;

/**
 * Tests of the client against a stub of the lease API, with a runner of their own (no JUnit
 * here): every static method named test* runs; it prints "N passed, N failed" and exits 1 on a
 * failure.
 *
 * <pre>
 * javac -d out $(find src -name '*.java') && java -cp out io.shardseq.ShardseqClientTest [name...]
 * </pre>
 */
public final class ShardseqClientTest {

    /** A lease server: consecutive blocks of shard 1 of N=4, or the answers the test sets. */
    static final class Stub implements AutoCloseable {
        final HttpServer srv;
        final URI url;
        long seq;
        volatile long validMs = 400;
        volatile boolean limited = true;
        volatile String token;
        volatile int[] error; // {status} with errorCode, for every request
        volatile String errorCode;
        final List<String> fail = Collections.synchronizedList(new ArrayList<>()); // "status code" before the next success
        final List<Long> requests = Collections.synchronizedList(new ArrayList<>());

        Stub() throws IOException {
            // Without it the JDK's server waits for the delayed ACK (40 ms) before its body.
            System.setProperty("sun.net.httpserver.nodelay", "true");
            srv = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
            srv.setExecutor(Executors.newCachedThreadPool(r -> {
                Thread t = new Thread(r);
                t.setDaemon(true);
                return t;
            }));
            srv.createContext("/v1/leases/", ex -> {
                String q = ex.getRequestURI().getQuery();
                long count = Long.parseLong(q.replace("count=", ""));
                String ns = ex.getRequestURI().getPath().substring("/v1/leases/".length());
                int status;
                String body;
                synchronized (this) {
                    requests.add(count);
                    String f = null;
                    if (error != null) {
                        f = error[0] + " " + errorCode;
                    } else if (!fail.isEmpty()) {
                        f = fail.remove(0);
                    }
                    if (token != null && !("Bearer " + token).equals(ex.getRequestHeaders().getFirst("Authorization"))) {
                        f = "401 unauthorized";
                    }
                    if (f == null) {
                        long first = seq * 4 + 1;
                        seq += count;
                        status = 200;
                        body = "{\"namespace\":\"" + ns + "\",\"shard\":1,\"first\":" + first + ",\"step\":4,\"count\":" + count
                                + ",\"valid_ms\":" + (limited ? validMs : 0) + ",\"limited\":" + limited + "}";
                    } else {
                        String[] p = f.split(" ");
                        status = Integer.parseInt(p[0]);
                        body = "{\"error\":\"stub says \\\"" + p[1] + "\\\"\",\"code\":\"" + p[1] + "\"}";
                    }
                }
                byte[] b = body.getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().set("Content-Type", "application/json");
                ex.sendResponseHeaders(status, b.length);
                try (OutputStream o = ex.getResponseBody()) {
                    o.write(b);
                }
            });
            srv.start();
            url = URI.create("http://127.0.0.1:" + srv.getAddress().getPort());
        }

        @Override
        public void close() {
            srv.stop(0);
        }
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static <T extends Throwable> T expect(Class<T> cls, Runnable r) {
        try {
            r.run();
        } catch (Throwable t) {
            if (cls.isInstance(t)) {
                return cls.cast(t);
            }
            throw new AssertionError("want " + cls.getSimpleName() + ", got " + t, t);
        }
        throw new AssertionError("want " + cls.getSimpleName() + ", got nothing");
    }

    static void testUniqueAndOrderedOneThread() throws Exception {
        try (Stub s = new Stub();
                ShardseqClient c = ShardseqClient.builder(s.url, "orders").leaseBounds(10, 1000).leaseSize(10).build()) {
            long prev = 0;
            for (int i = 0; i < 5000; i++) {
                long id = c.next();
                check(id > prev && id % 4 == 1, "id " + id + " after " + prev);
                prev = id;
            }
            for (long id : c.next(3000)) {
                check(id > prev, "batch id " + id + " after " + prev);
                prev = id;
            }
            check(s.requests.get(0) == 10, "first lease size " + s.requests.get(0));
        }
    }

    static void testThreads() throws Exception {
        try (Stub s = new Stub(); ShardseqClient c = ShardseqClient.builder(s.url, "orders").leaseBounds(50, 100000).leaseSize(50).build()) {
            // Thread safety, not the time limit: on a loaded machine 8 busy
            // threads can keep a 400 ms lease from being taken in time, and
            // every lease would then arrive expired.
            s.validMs = 10_000;
            ConcurrentLinkedQueue<Long> all = new ConcurrentLinkedQueue<>();
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                ts.add(new Thread(() -> {
                    for (int i = 0; i < 5000; i++) all.add(c.next());
                    for (long id : c.next(777)) all.add(id);
                }));
            }
            ts.forEach(Thread::start);
            for (Thread t : ts) t.join();
            Set<Long> set = new HashSet<>(all);
            check(all.size() == 8 * 5777, "count " + all.size());
            check(set.size() == all.size(), "duplicates: " + (all.size() - set.size()));
        }
    }

    static void testClockCheckEveryThreads() throws Exception { // the default is 64: the strict check here
        try (Stub s = new Stub(); ShardseqClient c = ShardseqClient.builder(s.url, "orders").clockCheckEvery(1).build()) {
            ConcurrentLinkedQueue<Long> all = new ConcurrentLinkedQueue<>();
            List<Thread> ts = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                ts.add(new Thread(() -> {
                    for (int i = 0; i < 50000; i++) all.add(c.next());
                }));
            }
            ts.forEach(Thread::start);
            for (Thread t : ts) t.join();
            check(new HashSet<>(all).size() == 200000, "duplicates");
        }
    }

    static void testAdapts() throws Exception {
        try (Stub s = new Stub(); ShardseqClient c = ShardseqClient.builder(s.url, "orders").leaseBounds(100, 1_000_000).leaseSize(100).build()) {
            long n = 0;
            long t0 = System.nanoTime();
            while (System.nanoTime() - t0 < 500_000_000L) {
                c.next(1000);
                n += 1000;
            }
            check(c.leaseSize() > 1000, "lease size " + c.leaseSize() + " did not follow the rate");
            check(s.requests.size() < n / 1000, s.requests.size() + " requests for " + n + " IDs");
        }
    }

    static void testExpiredLeaseDropped() throws Exception {
        for (int every : new int[] {1, 64}) {
            try (Stub s = new Stub()) {
                s.validMs = 150;
                List<Lease> seen = Collections.synchronizedList(new ArrayList<>());
                try (ShardseqClient c = ShardseqClient.builder(s.url, "orders").leaseBounds(1000, 1000).leaseSize(1000)
                        .clockCheckEvery(every).onLease(seen::add).build()) {
                    long a = c.next();
                    Thread.sleep(300); // past the lease's 150 ms: what is left of it are gaps
                    long b = c.next();
                    // A cold JVM may take longer than 150 ms for the first lease: find a's.
                    Lease first = seen.stream().filter(l -> l.contains(a)).findFirst().orElse(null);
                    check(first != null, "a=" + a + " from no lease");
                    check(!first.contains(b), "b=" + b + " from the expired lease " + first + " (every " + every + ")");
                    check(c.expiredLeases() >= 1, "expired " + c.expiredLeases());
                }
            }
        }
    }

    /** Waits until the refill thread sleeps with nothing to fetch (its deadline watch included). */
    static void awaitIdle(ShardseqClient c) throws InterruptedException {
        long until = System.nanoTime() + 5_000_000_000L;
        for (;;) {
            Thread.State st = c.refiller.getState();
            if (c.refillIdle() && (st == Thread.State.WAITING || st == Thread.State.TIMED_WAITING)) {
                return;
            }
            check(System.nanoTime() - until < 0, "refill thread not idle in 5s (" + st + ")");
            Thread.sleep(1); // polling, with the deadline above
        }
    }

    /** How many of ids are from a lease of seen whose time ended by now (on the fake clock). */
    static int late(long[] ids, List<Lease> seen, long now) {
        int n = 0;
        for (long id : ids) {
            for (Lease l : List.copyOf(seen)) {
                if (l.contains(id) && l.sentNanos() + l.validNanos() <= now) {
                    n++;
                }
            }
        }
        return n;
    }

    /**
     * A process suspended past its lease's time: the fake clock jumps while the refill thread
     * sleeps, as if the caller ran first after a SIGSTOP. next() hands out at most 63 more IDs of
     * the lease by default (its clock check every 64 IDs), none with clockCheckEvery(1); next(n)
     * none (a check per call). The negative control, clockCheckEvery(1 << 20), hands out more.
     */
    static void testStallBoundedByCheckInterval() throws Exception {
        for (int every : new int[] {0, 1, 1 << 20}) { // 0: the default
            try (Stub s = new Stub()) {
                s.validMs = 400;
                java.util.concurrent.atomic.AtomicLong now = new java.util.concurrent.atomic.AtomicLong(1_000_000_000L);
                List<Lease> seen = Collections.synchronizedList(new ArrayList<>());
                ShardseqClient.Builder b = ShardseqClient.builder(s.url, "orders").leaseBounds(1000, 1000).leaseSize(1000)
                        .clock(now::get).onLease(seen::add);
                if (every != 0) {
                    b.clockCheckEvery(every);
                }
                try (ShardseqClient c = b.build()) {
                    for (int i = 0; i < 10; i++) c.next(); // the stall comes at the 11th ID of the lease
                    awaitIdle(c); // the next lease buffered
                    long t = now.addAndGet(500_000_000L); // past both leases' 400 ms
                    long[] ids = new long[200];
                    for (int i = 0; i < ids.length; i++) ids[i] = c.next();
                    int n = late(ids, seen, t);
                    String what = "every " + every + ": " + n + " IDs of leases past their time after the stall";
                    switch (every) {
                        case 0 -> check(n <= ShardseqClient.DEFAULT_CLOCK_CHECK - 1, what);
                        case 1 -> check(n == 0, what);
                        default -> check(n > ShardseqClient.DEFAULT_CLOCK_CHECK, what + " (negative control: want more than 64)");
                    }
                    check(every > ShardseqClient.DEFAULT_CLOCK_CHECK || c.expiredLeases() >= 1,
                            "every " + every + ": expired " + c.expiredLeases());
                    // A batch reads the clock once per call: nothing late at all.
                    awaitIdle(c);
                    t = now.addAndGet(500_000_000L);
                    n = late(c.next(50), seen, t);
                    check(n == 0, "every " + every + ": next(50) gave " + n + " IDs of leases past their time");
                }
            }
        }
    }

    static void testDeadlineFromSent() throws Exception {
        try (Stub s = new Stub()) {
            s.validMs = 300;
            List<Lease> seen = Collections.synchronizedList(new ArrayList<>());
            long t0 = System.nanoTime();
            try (ShardseqClient c = ShardseqClient.builder(s.url, "orders").onLease(seen::add).build()) {
                c.next();
                Lease l = seen.get(0);
                check(l.sentNanos() - t0 >= 0, "sent before the client existed");
                check(l.validNanos() == 300_000_000L && l.limited(), "lease " + l);
            }
            s.limited = false;
            seen.clear();
            try (ShardseqClient c = ShardseqClient.builder(s.url, "orders").onLease(seen::add).build()) {
                c.next();
                check(!seen.get(0).limited(), "unlimited lease " + seen.get(0));
            }
        }
    }

    static void testToken() throws Exception {
        try (Stub s = new Stub()) {
            s.token = "sekrit";
            try (ShardseqClient c = new ShardseqClient(s.url, "orders", "sekrit")) {
                check(c.next() > 0, "with the token");
            }
            try (ShardseqClient c = new ShardseqClient(s.url, "orders", "wrong")) {
                ShardseqException.Unauthorized e = expect(ShardseqException.Unauthorized.class, c::next);
                check(e.code().equals("unauthorized") && e.status() == 401, e.code() + " " + e.status());
                check(e.getMessage().contains("stub says \"unauthorized\""), e.getMessage());
            }
        }
    }

    static void testNamespaceDeleted() throws Exception {
        try (Stub s = new Stub(); ShardseqClient c = new ShardseqClient(s.url, "orders")) {
            s.errorCode = "namespace_deleted";
            s.error = new int[] {404};
            ShardseqException.NamespaceDeleted e = expect(ShardseqException.NamespaceDeleted.class, c::next);
            check(e instanceof ShardseqException.NamespaceNotFound, "not a NamespaceNotFound");
            check(e.code().equals("namespace_deleted") && e.status() == 404, e.code());
            s.error = null; // recreated: the client recovers
            check(c.next() > 0, "after recreation");
        }
    }

    static void testRetries() throws Exception {
        try (Stub s = new Stub(); ShardseqClient c = new ShardseqClient(s.url, "orders")) {
            s.fail.add("503 unavailable");
            s.fail.add("503 unavailable");
            s.fail.add("429 too_many_namespaces");
            check(c.next() > 0, "after retries");
            check(s.requests.size() == 4, "requests " + s.requests.size());
        }
    }

    static void testServerDown() throws Exception {
        URI url;
        try (Stub s = new Stub()) {
            url = s.url;
        }
        try (ShardseqClient c = ShardseqClient.builder(url, "orders").retryFor(Duration.ofMillis(500)).build()) {
            long t0 = System.nanoTime();
            ShardseqException.Unavailable e = expect(ShardseqException.Unavailable.class, c::next);
            double took = (System.nanoTime() - t0) / 1e9;
            check(took >= 0.5 && took < 3, "took " + took);
            check(e.getMessage().contains(url.toString()) && e.getMessage().contains("failed attempts"), e.getMessage());
            check(e.status() == 0 && e.code().equals("unavailable"), e.code() + " " + e.status());
            var m = java.util.regex.Pattern.compile("\\((\\d+) failed attempts").matcher(e.getMessage());
            check(m.find(), "no attempt count in " + e.getMessage());
            int attempts = Integer.parseInt(m.group(1));
            check(attempts >= 2 && attempts <= 10, attempts + " attempts in 0.5s: no backoff?");
        }
    }

    static void testClose() throws Exception {
        try (Stub s = new Stub()) {
            ShardseqClient c = new ShardseqClient(s.url, "orders");
            c.next();
            c.close();
            c.close();
            expect(ShardseqException.Closed.class, c::next);
            expect(ShardseqException.Closed.class, () -> c.next(5));
        }
    }

    static void testBadArguments() throws Exception {
        URI u = URI.create("http://127.0.0.1:1");
        expect(IllegalArgumentException.class, () -> ShardseqClient.builder(u, "o").leaseBounds(0, 10).build());
        expect(IllegalArgumentException.class, () -> ShardseqClient.builder(u, "o").leaseBounds(1, 2_000_000).build());
        expect(IllegalArgumentException.class, () -> ShardseqClient.builder(u, "o").leaseSize(10).build());
        expect(IllegalArgumentException.class, () -> ShardseqClient.builder(u, "o").target(1).build());
        expect(IllegalArgumentException.class, () -> ShardseqClient.builder(u, "o").clockCheckEvery(3).build());
        expect(IllegalArgumentException.class, () -> new ShardseqClient(URI.create("ftp://x"), "o"));
        try (Stub s = new Stub(); ShardseqClient c = new ShardseqClient(s.url, "orders")) {
            expect(IllegalArgumentException.class, () -> c.next(0));
            expect(IllegalArgumentException.class, () -> c.next(ShardseqClient.MAX_BATCH + 1));
        }
    }

    static void testJson() {
        String d = "{\"error\":\"a \\\"q\\\" b\\u0041\",\"code\":\"x\",\"n\":{\"first\":9},\"first\":12,\"limited\":true}";
        check("a \"q\" bA".equals(Json.string(d, "error")), Json.string(d, "error"));
        check(Json.number(d, "first") == 12, "first");
        check(Json.bool(d, "limited"), "limited");
        check(Json.string(d, "nope") == null, "nope");
        expect(IllegalArgumentException.class, () -> Json.number(d, "code"));
    }

    public static void main(String[] args) throws Exception {
        int passed = 0, failed = 0;
        Set<String> only = new HashSet<>(List.of(args));
        for (Method m : ShardseqClientTest.class.getDeclaredMethods()) {
            if (!m.getName().startsWith("test") || !Modifier.isStatic(m.getModifiers())) continue;
            if (!only.isEmpty() && !only.contains(m.getName())) continue;
            long t0 = System.nanoTime();
            try {
                m.invoke(null);
                passed++;
                System.out.printf("ok   %s (%.2fs)%n", m.getName(), (System.nanoTime() - t0) / 1e9);
            } catch (java.lang.reflect.InvocationTargetException e) {
                failed++;
                System.out.printf("FAIL %s: %s%n", m.getName(), e.getCause());
                e.getCause().printStackTrace(System.out);
            }
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
