package io.shardseq;

/**
 * A block of IDs from the server ({@code POST /v1/leases/{namespace}}): {@code first},
 * {@code first+step}, ..., {@code first+(count-1)*step}. {@code sentNanos} is
 * {@link System#nanoTime()} when its request was sent; its IDs are handed out only until
 * {@code validNanos} after that when {@code limited} (else until used up).
 */
public record Lease(String namespace, int shard, long first, long step, long count,
        long sentNanos, long validNanos, boolean limited) {

    /** The k-th ID of the lease (k from 0). */
    public long id(long k) {
        return first + k * step;
    }

    /** Whether id is one of the lease's IDs. */
    public boolean contains(long id) {
        return id >= first && id < first + count * step && (id - first) % step == 0;
    }
}
