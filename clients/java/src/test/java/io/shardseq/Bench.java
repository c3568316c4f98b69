package io.shardseq;

import java.util.concurrent.atomic.AtomicLong;

/**
 * next() on one thread against an AtomicLong.incrementAndGet() loop, in the same run, against a
 * stub server (or a real one: {@code java ... io.shardseq.Bench http://127.0.0.1:8080 ns}).
 * Prints ns per ID (the best of 5 alternating rounds of 10M each, after 2 to warm up), the ratio
 * (goal: >= 0.30) and lease requests per 10,000 IDs, for the default
 * (a clock check every 64 IDs) and for clockCheckEvery(1), the check on every call.
 */
public final class Bench {
    /**
     * SHARDSEQ_BENCH_EVERY=default (or a power of two) measures one setting only: a JVM's profile
     * is then its own. 0 stands for the default: the builder without clockCheckEvery.
     */
    static int[] everies(String[] args) {
        String e = System.getenv("SHARDSEQ_BENCH_EVERY");
        return e == null ? new int[] {0, 1} : new int[] {e.equals("default") ? 0 : Integer.parseInt(e)};
    }

    public static void main(String[] args) throws Exception {
        ShardseqClientTest.Stub stub = args.length == 0 ? new ShardseqClientTest.Stub() : null;
        java.net.URI url = stub != null ? stub.url : java.net.URI.create(args[0]);
        String ns = args.length > 1 ? args[1] : "bench";
        long n = 10_000_000;
        int warm = 2, rounds = 5;
        for (int every : everies(args)) {
            ShardseqClient.Builder cb = ShardseqClient.builder(url, ns);
            if (every != 0) cb.clockCheckEvery(every);
            String name = every == 0 ? "default" : "clockCheckEvery(" + every + ")";
            try (ShardseqClient c = cb.build()) {
                AtomicLong al = new AtomicLong();
                long sink = 0, leases0 = 0;
                // Alternating rounds, the best of each kind: the machine is shared, and a round
                // another process interrupted is slower, never faster.
                double bestA = Double.MAX_VALUE, bestB = Double.MAX_VALUE;
                for (int round = 0; round < warm + rounds; round++) {
                    if (round == warm) leases0 = c.leases();
                    long t0 = System.nanoTime();
                    for (long i = 0; i < n; i++) sink += al.incrementAndGet();
                    long t1 = System.nanoTime();
                    for (long i = 0; i < n; i++) sink += c.next();
                    long t2 = System.nanoTime();
                    if (round >= warm) {
                        bestA = Math.min(bestA, (t1 - t0) / (double) n);
                        bestB = Math.min(bestB, (t2 - t1) / (double) n);
                    }
                }
                long leases = c.leases() - leases0, ids = n * rounds;
                System.out.printf("%s: AtomicLong %.2f ns/op, next() %.2f ns/op (%.1fM IDs/s), ratio %.2f (best of %d rounds each);"
                        + " %d lease requests for %d IDs = %.3f per 10,000 (lease size now %d)%n",
                        name, bestA, bestB, 1e3 / bestB, bestA / bestB, rounds, leases, ids, leases * 10000.0 / ids, c.leaseSize());
                if (sink == 42) System.out.println();
            }
        }
        if (stub != null) stub.close();
    }
}
