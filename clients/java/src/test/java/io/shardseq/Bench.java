package io.shardseq;

import java.util.concurrent.atomic.AtomicLong;

/**
 * next() on one thread against an AtomicLong.incrementAndGet() loop, in the same run, against a
 * stub server (or a real one: {@code java ... io.shardseq.Bench http://127.0.0.1:8080 ns}).
 * Prints ns per ID, the ratio (goal: >= 0.30) and lease requests per 10,000 IDs, for the default
 * clock check on every call and for clockCheckEvery(64).
 */
public final class Bench {
    /** SHARDSEQ_BENCH_EVERY=64 measures one setting only (a JVM's profile is then its own). */
    static int[] everies(String[] args) {
        String e = System.getenv("SHARDSEQ_BENCH_EVERY");
        return e == null ? new int[] {1, 64} : new int[] {Integer.parseInt(e)};
    }

    public static void main(String[] args) throws Exception {
        ShardseqClientTest.Stub stub = args.length == 0 ? new ShardseqClientTest.Stub() : null;
        java.net.URI url = stub != null ? stub.url : java.net.URI.create(args[0]);
        String ns = args.length > 1 ? args[1] : "bench";
        long n = 20_000_000;
        for (int every : everies(args)) {
            try (ShardseqClient c = ShardseqClient.builder(url, ns).clockCheckEvery(every).build()) {
                AtomicLong al = new AtomicLong();
                long sink = 0;
                for (int round = 0; round < 3; round++) { // the last round counts; the others warm up
                    long t0 = System.nanoTime();
                    for (long i = 0; i < n; i++) sink += al.incrementAndGet();
                    long t1 = System.nanoTime();
                    long leases0 = c.leases();
                    for (long i = 0; i < n; i++) sink += c.next();
                    long t2 = System.nanoTime();
                    long leases = c.leases() - leases0;
                    if (round == 2) {
                        double a = (t1 - t0) / (double) n, b = (t2 - t1) / (double) n;
                        System.out.printf("clockCheckEvery(%d): AtomicLong %.2f ns/op, next() %.2f ns/op (%.1fM IDs/s), ratio %.2f;"
                                + " %d lease requests for %d IDs = %.3f per 10,000 (lease size now %d)%n",
                                every, a, b, 1e3 / b, a / b, leases, n, leases * 10000.0 / n, c.leaseSize());
                    }
                }
                if (sink == 42) System.out.println();
            }
        }
        if (stub != null) stub.close();
    }
}
