package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echo answers with what a request carried, in the shapes Go servers use: a sized body,
// a chunked one (flushed), and a sized one on a connection the server then closes.
func echo(t *testing.T, conns *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Authorization") + " " +
			r.Header.Get("Idempotency-Key") + " " + string(body)
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(http.StatusConflict)
			for _, part := range []string{got, " ", strings.Repeat("x", 5000)} {
				_, _ = io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, got)
		default:
			w.WriteHeader(http.StatusAccepted)
			_, _ = io.WriteString(w, got)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestRawConn(t *testing.T) {
	var conns atomic.Int64
	srv := echo(t, &conns)
	c := newRawConn()
	defer c.close()
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		bearer, key        string
		wantStatus         int
		wantPrefix         string
		wantLen            int
		wantConns          int64 // connections opened so far
	}{
		{"post with headers", "POST", "/order/sell", []byte(`{"id":7}`), "Bearer tok", "k-1", 202,
			`POST /order/sell Bearer tok k-1 {"id":7}`, 0, 1},
		{"get kept alive", "GET", "/stock/get?id=7", nil, "", "", 202, "GET /stock/get?id=7   ", 0, 1},
		{"chunked", "GET", "/chunked", nil, "", "", 409, "GET /chunked   ", 5000 + len("GET /chunked    "), 1},
		{"server closes", "GET", "/close", nil, "", "", 200, "GET /close   ", 0, 1},
		{"new connection after close", "GET", "/again", nil, "", "", 202, "GET /again   ", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := newRequest(tc.method, srv.URL+tc.path, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			req.bearer, req.key = tc.bearer, tc.key
			status, body, err := c.do(&req)
			if err != nil {
				t.Fatalf("do: %v", err)
			}
			if status != tc.wantStatus || !strings.HasPrefix(string(body), tc.wantPrefix) {
				t.Errorf("got %d %.80q, want %d %q...", status, body, tc.wantStatus, tc.wantPrefix)
			}
			if tc.wantLen > 0 && len(body) != tc.wantLen {
				t.Errorf("body length %d, want %d", len(body), tc.wantLen)
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("%d connections opened, want %d", got, tc.wantConns)
			}
		})
	}
}

func TestLoopStopsAtCountAndRecordsReasons(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer odd" {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"success":false,"error":{"code":409,"detail":"sold out"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"success":true,"order":{"id":42}}`)
	}))
	defer srv.Close()
	tmpl, err := newRequest("POST", srv.URL+"/order/sell", []byte(`{"id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	l := loop{conns: 4, newConn: func() conn { return newRawConn() }, orders: true, n: 101}
	m := l.run(context.Background(), func(seq int64) request {
		r := tmpl
		r.user, r.bearer = seq+1, "Bearer even"
		if seq%2 == 1 {
			r.bearer = "Bearer odd"
		}
		return r
	})
	st := summarise(m)
	if st.requests != 101 || st.ok != 51 || st.others["sold out"] != 50 || len(st.others) != 1 {
		t.Errorf("got %d requests, %d ok, others %v; want 101, 51 ok, sold out 50", st.requests, st.ok, st.others)
	}
	seen := map[int64]bool{}
	for _, s := range m.samples {
		seen[s.seq] = true
		if s.reason == reasonOK && s.order != 42 {
			t.Errorf("request %d: order %d, want 42", s.seq, s.order)
		}
		if s.latency <= 0 || s.latency > time.Minute {
			t.Errorf("request %d: latency %v", s.seq, s.latency)
		}
	}
	if len(seen) != 101 {
		t.Errorf("%d distinct requests, want 101", len(seen))
	}
}
