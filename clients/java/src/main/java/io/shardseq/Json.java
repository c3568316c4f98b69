package io.shardseq;

/**
 * Reads members of the server's flat JSON objects (a lease, an error): enough JSON for
 * {@code {"key":value,...}} with string, integer and boolean values, so the client needs no
 * library. Not a general parser: nested values are not looked into.
 */
final class Json {
    private Json() {}

    /** The raw text of member key's value, or null when absent. */
    private static String raw(String doc, String key) {
        if (doc == null) {
            return null;
        }
        String q = "\"" + key + "\"";
        int depth = 0;
        boolean inString = false;
        for (int i = 0; i < doc.length(); i++) {
            char c = doc.charAt(i);
            if (inString) {
                if (c == '\\') {
                    i++;
                } else if (c == '"') {
                    inString = false;
                }
                continue;
            }
            switch (c) {
                case '{', '[' -> depth++;
                case '}', ']' -> depth--;
                case '"' -> {
                    if (depth == 1 && doc.startsWith(q, i)) {
                        int j = i + q.length();
                        while (j < doc.length() && Character.isWhitespace(doc.charAt(j))) j++;
                        if (j < doc.length() && doc.charAt(j) == ':') {
                            j++;
                            while (j < doc.length() && Character.isWhitespace(doc.charAt(j))) j++;
                            return value(doc, j);
                        }
                    }
                    inString = true;
                }
                default -> { }
            }
        }
        return null;
    }

    /** The value starting at i: a string (with its quotes) or a bare token. */
    private static String value(String doc, int i) {
        if (i < doc.length() && doc.charAt(i) == '"') {
            int j = i + 1;
            while (j < doc.length() && doc.charAt(j) != '"') {
                if (doc.charAt(j) == '\\') j++;
                j++;
            }
            return doc.substring(i, Math.min(j + 1, doc.length()));
        }
        int j = i;
        while (j < doc.length() && ",}] \t\r\n".indexOf(doc.charAt(j)) < 0) j++;
        return doc.substring(i, j);
    }

    /** A string member, unescaped, or null when absent or not a string. */
    static String string(String doc, String key) {
        String v = raw(doc, key);
        if (v == null || v.length() < 2 || v.charAt(0) != '"') {
            return null;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 1; i < v.length() - 1; i++) {
            char c = v.charAt(i);
            if (c != '\\' || i + 1 >= v.length() - 1) {
                b.append(c);
                continue;
            }
            char e = v.charAt(++i);
            switch (e) {
                case 'n' -> b.append('\n');
                case 't' -> b.append('\t');
                case 'r' -> b.append('\r');
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'u' -> {
                    if (i + 4 < v.length()) {
                        b.append((char) Integer.parseInt(v.substring(i + 1, i + 5), 16));
                        i += 4;
                    }
                }
                default -> b.append(e);
            }
        }
        return b.toString();
    }

    /** An integer member; IllegalArgumentException when absent or not an integer. */
    static long number(String doc, String key) {
        String v = raw(doc, key);
        if (v == null) {
            throw new IllegalArgumentException("no member " + key);
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("member " + key + " is not an integer: " + v);
        }
    }

    /** A boolean member; IllegalArgumentException when absent or not a boolean. */
    static boolean bool(String doc, String key) {
        String v = raw(doc, key);
        if ("true".equals(v)) return true;
        if ("false".equals(v)) return false;
        throw new IllegalArgumentException("member " + key + " is not a boolean: " + v);
    }
}
