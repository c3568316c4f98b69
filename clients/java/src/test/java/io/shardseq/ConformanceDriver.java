package io.shardseq;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The Java side of the conformance suite (clients/conformance_test.go); the same protocol as
 * clients/python/tests/conformance_driver.py, times on System.nanoTime() in microseconds.
 *
 * <pre>
 * java -cp out io.shardseq.ConformanceDriver MODE SERVER NAMESPACE TOKEN [RETRY_FOR_SECONDS]
 * </pre>
 */
public final class ConformanceDriver {
    private static final BufferedWriter OUT = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);

    static synchronized void emit(String line, boolean flush) {
        try {
            OUT.write(line);
            OUT.write('\n');
            if (flush) OUT.flush();
        } catch (IOException e) {
            System.exit(3);
        }
    }

    static synchronized void flush() {
        try {
            OUT.flush();
        } catch (IOException e) {
            System.exit(3);
        }
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        double retryFor = args.length > 4 ? Double.parseDouble(args[4]) : 10;
        ShardseqClient.Builder b = ShardseqClient.builder(URI.create(args[1]), args[2])
                .token("-".equals(args[3]) ? null : args[3])
                .retryFor(Duration.ofMillis((long) (retryFor * 1000)))
                .onLease(l -> emit("L " + l.first() + " " + l.step() + " " + l.count() + " "
                        + (l.limited() ? (l.sentNanos() + l.validNanos()) / 1000 : -1), true));
        if (mode.equals("slow")) {
            b.leaseSize(100_000).leaseBounds(100_000, 100_000);
        }
        var stop = new java.util.concurrent.atomic.AtomicBoolean();
        if (!mode.equals("once")) {
            Thread t = new Thread(() -> {
                try {
                    System.in.readAllBytes();
                } catch (IOException ignored) {
                    // closed: stop as well
                }
                stop.set(true);
            });
            t.setDaemon(true);
            t.start();
        }
        int perMs = mode.equals("run") ? 10 : 1;
        try (ShardseqClient c = b.build()) {
            for (;;) {
                for (int k = 0; k < perMs; k++) {
                    long t0 = System.nanoTime();
                    try {
                        long id = c.next();
                        emit("I " + id + " " + t0 / 1000 + " " + System.nanoTime() / 1000, false);
                    } catch (ShardseqException e) {
                        emit("E " + e.code() + " " + e.status() + " " + (System.nanoTime() - t0) / 1_000_000 + " "
                                + String.valueOf(e.getMessage()).replace('\n', ' '), false);
                        break;
                    }
                }
                flush();
                if (mode.equals("once") || stop.get()) break;
                Thread.sleep(1);
            }
        }
        emit("D", true);
    }
}
