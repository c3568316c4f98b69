package bare

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerAnswersAsServe(t *testing.T) {
	h := NewHandler()
	for i, want := range []string{`{"namespace":"orders","ids":[1]}` + "\n", `{"namespace":"orders","ids":[2]}` + "\n"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/ids/orders", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, rec.Code)
		}
		if got := rec.Body.String(); got != want {
			t.Fatalf("request %d: body %q, want %q", i, got, want)
		}
		for k, v := range map[string]string{
			"Content-Type":           "application/json",
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
			"Content-Length":         "33",
		} {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("request %d: %s %q, want %q", i, k, got, v)
			}
		}
	}
}

func TestHandlerRefuses(t *testing.T) {
	h := NewHandler()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/v1/ids/orders", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v1/ids/bad%22name", http.StatusBadRequest},
		{http.MethodPost, "/v1/other", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
		if strings.Contains(rec.Body.String(), `"ids"`) {
			t.Errorf("%s %s: answered IDs: %q", tc.method, tc.path, rec.Body.String())
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, nil) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/v1/ids/ns", "", nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(body), `{"namespace":"ns","ids":[1]}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running 10 s after its context ended")
	}
}
