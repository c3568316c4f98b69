package server

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// codeBadParameter is the code of a query parameter the route does not take,
// or one given twice: probably a mistake (?cnt=3 would hand out one ID), so
// it is refused rather than ignored.
const codeBadParameter = "bad_parameter"

// documentedCodes is every error code the server documents: errorCodes and
// codeBadParameter. README and api/openapi.yaml list them in this order.
var documentedCodes = append(slices.Clip(errorCodes), codeBadParameter)

// errBadParameter is the error of a refused query; its text is the log's,
// the public message says which parameter.
var errBadParameter = errors.New("server: bad query parameter")

// paramError is a refused query string: its public message says what is wrong.
type paramError struct{ msg string }

func (e *paramError) Error() string { return errBadParameter.Error() + ": " + e.msg }
func (e *paramError) Unwrap() error { return errBadParameter }

// writeParamError answers 400 bad_parameter with e's message.
func writeParamError(w http.ResponseWriter, e *paramError) {
	writeJSON(w, http.StatusBadRequest, errorBody{Error: e.msg, Code: codeBadParameter})
}

// parseQuery splits a raw query string into its parameters, refusing a name
// not in allowed, a name given twice, a malformed escape and a ';'
// separator (which url.ParseQuery drops silently). A name with no '=' has
// the value "". Empty pieces (a trailing '&') are ignored.
func parseQuery(raw string, allowed ...string) (map[string]string, *paramError) {
	if raw == "" {
		return nil, nil
	}
	want := "takes no query parameters"
	if len(allowed) > 0 {
		want = "takes only " + strings.Join(allowed, ", ")
	}
	out := make(map[string]string, len(allowed))
	for piece := range strings.SplitSeq(raw, "&") {
		if piece == "" {
			continue
		}
		if strings.Contains(piece, ";") {
			return nil, &paramError{"query: ';' is not a separator; use '&' (this route " + want + ")"}
		}
		k, v, _ := strings.Cut(piece, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, &paramError{"query: malformed escape in " + quoted(piece)}
		}
		if !slices.Contains(allowed, name) {
			return nil, &paramError{"unknown query parameter " + quoted(name) + "; this route " + want}
		}
		if _, dup := out[name]; dup {
			return nil, &paramError{"query parameter " + quoted(name) + " given more than once"}
		}
		out[name] = value
	}
	return out, nil
}

// strictQuery refuses, with 400 bad_parameter, a request whose query has a
// parameter not in allowed or one given twice, before h sees it. h then
// reads r.URL.Query(), which holds at most one value per allowed name.
func strictQuery(h http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := parseQuery(r.URL.RawQuery, allowed...); err != nil {
			writeParamError(w, err)
			return
		}
		h(w, r)
	}
}

// parsePositive parses a decimal integer from 1 to max written as JSON and
// people write it: digits only, no sign, no leading zero, no space.
func parsePositive(s string, max int) (int, bool) {
	if s == "" || len(s) > 10 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}

// writeRequestError answers a refused request: a *paramError as
// bad_parameter, anything else as writeError does.
func writeRequestError(w http.ResponseWriter, err error) {
	if pe := (*paramError)(nil); errors.As(err, &pe) {
		writeParamError(w, pe)
		return
	}
	writeError(w, err)
}
