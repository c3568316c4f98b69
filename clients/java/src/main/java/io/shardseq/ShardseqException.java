package io.shardseq;

/**
 * Every error of the client. {@link #code()} is the server's error code (README "HTTP API":
 * {@code unauthorized}, {@code namespace_deleted}, {@code unavailable}, ...) or, for what the
 * client decides itself, {@code closed} or {@code bad_response}; {@link #status()} the HTTP status,
 * 0 when no answer came. Branch on the class or the code, never on the message. Unchecked: an ID
 * source failing is not something most callers can handle where they call it.
 */
public class ShardseqException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String code;
    private final int status;

    public ShardseqException(String message, String code, int status) {
        super(message);
        this.code = code;
        this.status = status;
    }

    public ShardseqException(String message, String code, int status, Throwable cause) {
        super(message, cause);
        this.code = code;
        this.status = status;
    }

    /** The server's error code, or {@code closed}/{@code bad_response}. */
    public String code() {
        return code;
    }

    /** The HTTP status of the answer; 0 when no answer came. */
    public int status() {
        return status;
    }

    /** 400: a bad namespace name ({@code bad_namespace}) or count ({@code bad_count}). */
    public static class BadRequest extends ShardseqException {
        private static final long serialVersionUID = 1L;

        public BadRequest(String message, String code, int status) {
            super(message, code, status);
        }
    }

    /** 401: no valid bearer token ({@code unauthorized}). */
    public static class Unauthorized extends ShardseqException {
        private static final long serialVersionUID = 1L;

        public Unauthorized(String message, String code, int status) {
            super(message, code, status);
        }
    }

    /** 404: the namespace does not exist and the server creates none on use. */
    public static class NamespaceNotFound extends ShardseqException {
        private static final long serialVersionUID = 1L;

        public NamespaceNotFound(String message, String code, int status) {
            super(message, code, status);
        }
    }

    /** 404: the namespace was deleted and is not recreated; a NamespaceNotFound too. */
    public static class NamespaceDeleted extends NamespaceNotFound {
        private static final long serialVersionUID = 1L;

        public NamespaceDeleted(String message, String code, int status) {
            super(message, code, status);
        }
    }

    /** 429: the server creates no more namespaces for now; retried until retryFor ends. */
    public static class TooManyNamespaces extends ShardseqException {
        private static final long serialVersionUID = 1L;

        public TooManyNamespaces(String message, String code, int status) {
            super(message, code, status);
        }
    }

    /**
     * Nothing could be handed out in time: the server answered 503 or could not be reached,
     * through every retry. The message names the server, the attempts and the last error.
     */
    public static class Unavailable extends ShardseqException {
        private static final long serialVersionUID = 1L;

        public Unavailable(String message, String code, int status) {
            super(message, code, status);
        }

        public Unavailable(String message, int status, Throwable cause) {
            super(message, "unavailable", status, cause);
        }
    }

    /** The client was closed. */
    public static class Closed extends ShardseqException {
        private static final long serialVersionUID = 1L;

        public Closed(String message) {
            super(message, "closed", 0);
        }
    }

    /** The exception for an error answer of the server. */
    static ShardseqException fromAnswer(int status, String code, String message) {
        String c = code == null ? "" : code;
        switch (c) {
            case "bad_namespace":
            case "bad_count":
                return new BadRequest(message, c, status);
            case "unauthorized":
                return new Unauthorized(message, c, status);
            case "namespace_not_found":
                return new NamespaceNotFound(message, c, status);
            case "namespace_deleted":
                return new NamespaceDeleted(message, c, status);
            case "too_many_namespaces":
                return new TooManyNamespaces(message, c, status);
            case "unavailable":
                return new Unavailable(message, c, status);
            default:
                if (status == 401) return new Unauthorized(message, "unauthorized", status);
                if (status == 503) return new Unavailable(message, "unavailable", status);
                if (status == 400) return new BadRequest(message, c.isEmpty() ? "bad_request" : c, status);
                return new ShardseqException(message, c.isEmpty() ? "internal" : c, status);
        }
    }

    /** Whether asking again later may succeed. */
    static boolean retryable(ShardseqException e) {
        return e instanceof Unavailable || e instanceof TooManyNamespaces;
    }
}
