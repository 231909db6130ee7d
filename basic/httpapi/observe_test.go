package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/metrics"
	"secbuy/proto/outcome"
)

// The metrics are process-global, so these tests are not parallel (parallel tests start
// only once every sequential one has finished, so none of them counts meanwhile), each
// uses routes of its own, and each compares the figures before and after (go test -count=2
// runs them twice in one process).

// routeCounts returns metrics.Requests of route, keyed "code reason".
func routeCounts(t *testing.T, route string) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() {
		metrics.Requests.Collect(ch)
		close(ch)
	}()
	out := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatalf("read a counter: %v", err)
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["route"] == route {
			out[labels["code"]+" "+labels["reason"]] = d.GetCounter().GetValue()
		}
	}
	return out
}

// countsSince returns what was counted for route since before (routeCounts), without the
// series that did not change.
func countsSince(t *testing.T, route string, before map[string]float64) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for k, v := range routeCounts(t, route) {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// durationCount returns the number of observations of metrics.Duration for route.
func durationCount(t *testing.T, route string) uint64 {
	t.Helper()
	var d dto.Metric
	if err := metrics.Duration.WithLabelValues(route).(prometheus.Histogram).Write(&d); err != nil {
		t.Fatalf("read the histogram of %s: %v", route, err)
	}
	return d.GetHistogram().GetSampleCount()
}

// serveHTTP serves r on h into w, failing t (instead of crashing the test binary) if a
// panic gets out of h.
func serveHTTP(t *testing.T, h http.Handler, w http.ResponseWriter, r *http.Request) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Errorf("%s %s: the panic %v got out of the route", r.Method, r.URL.Path, v)
		}
	}()
	h.ServeHTTP(w, r)
}

type observed struct{ ID int64 }

// failureReason decodes a failed reply's error.reason, failing t unless the body is one
// JSON object with success false.
func failureReason(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, want JSON: %q", ct, w.Body)
	}
	var body struct {
		Success *bool `json:"success"`
		Error   struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body is not JSON (%v): %q", err, w.Body)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("more than one JSON value in the body: %q", w.Body)
	}
	if body.Success == nil || *body.Success {
		t.Fatalf("success is not false: %q", w.Body)
	}
	if body.Error.Code != w.Code {
		t.Errorf("error.code %d, want the status %d", body.Error.Code, w.Code)
	}
	return body.Error.Reason
}

func TestServeCounts(t *testing.T) {
	for _, c := range []struct {
		name       string
		method     string
		h          http.HandlerFunc
		wantStatus int
		wantReason string // the counter's reason label
	}{
		{"success", "GET", func(w http.ResponseWriter, r *http.Request) {
			OK(w, "thing", observed{1})
		}, 200, "OK"},
		{"sold out", "GET", func(w http.ResponseWriter, r *http.Request) {
			Fail(w, r, outcome.Refuse(outcome.Reason_SOLD_OUT))
		}, 409, "SOLD_OUT"},
		{"refusal with a detail", "GET", func(w http.ResponseWriter, r *http.Request) {
			Fail(w, r, Invalid("id must be a positive integer"))
		}, 400, "INVALID_INPUT"},
		{"pending", "GET", func(w http.ResponseWriter, r *http.Request) {
			Reply(w, r, nil, outcome.Refuse(outcome.Reason_ORDER_PENDING), "order", &observed{2}, func(o *observed) *observed { return o })
		}, 202, "ORDER_PENDING"},
		{"reply refusal", "GET", func(w http.ResponseWriter, r *http.Request) {
			Reply(w, r, nil, outcome.Refuse(outcome.Reason_ALREADY_BOUGHT), "order", &observed{3}, func(o *observed) *observed { return o })
		}, 409, "ALREADY_BOUGHT"},
		{"failed call", "GET", func(w http.ResponseWriter, r *http.Request) {
			Reply(w, r, merrors.Timeout("x", "slow"), nil, "order", (*observed)(nil), func(o *observed) *observed { return o })
		}, 503, "BUSY"},
		{"panic", "GET", func(w http.ResponseWriter, r *http.Request) {
			panic("boom")
		}, 500, "INTERNAL"},
		{"nothing written", "GET", func(w http.ResponseWriter, r *http.Request) {}, 200, "OK"},
		{"status without a body", "GET", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, 204, "OK"},
		{"http.Error", "GET", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "x", http.StatusServiceUnavailable)
		}, 503, "OTHER"},
		{"wrong method", "POST", func(w http.ResponseWriter, r *http.Request) {
			t.Error("the handler of a GET route ran for a POST")
		}, 405, "METHOD_NOT_ALLOWED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			route := "/test/observe/counts/" + strings.ReplaceAll(c.name, " ", "-")
			mux := Mux(Get(route, c.h))
			before, beforeDur := routeCounts(t, route), durationCount(t, route)

			w := httptest.NewRecorder()
			serveHTTP(t, mux, w, httptest.NewRequest(c.method, route, nil))

			if w.Code != c.wantStatus {
				t.Errorf("status %d, want %d: %q", w.Code, c.wantStatus, w.Body)
			}
			if w.Code >= 400 && c.wantReason != "OTHER" { // OTHER: not a reply of this package
				if reason := failureReason(t, w); reason != c.wantReason {
					t.Errorf("error.reason %q, want %q", reason, c.wantReason)
				}
			}
			want := map[string]float64{fmt.Sprintf("%d %s", c.wantStatus, c.wantReason): 1}
			if got := countsSince(t, route, before); !maps.Equal(got, want) {
				t.Errorf("counted %v, want %v", got, want)
			}
			if got := durationCount(t, route) - beforeDur; got != 1 {
				t.Errorf("duration observed %d times, want 1", got)
			}
		})
	}
}

// The body of a panic's 500 is the INTERNAL refusal and nothing of the panic.
func TestServePanicBody(t *testing.T) {
	route := "/test/observe/panic-body"
	mux := Mux(Get(route, func(w http.ResponseWriter, r *http.Request) {
		panic(errors.New("secret detail at handler.go:12"))
	}))
	w := httptest.NewRecorder()
	serveHTTP(t, mux, w, httptest.NewRequest("GET", route, nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500: %q", w.Code, w.Body)
	}
	if reason := failureReason(t, w); reason != "INTERNAL" {
		t.Errorf("error.reason %q, want INTERNAL", reason)
	}
	for _, leak := range []string{"secret", ".go:", "goroutine"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("body contains %q: %q", leak, w.Body)
		}
	}
}

// http.ErrAbortHandler is net/http's way to abort a reply: it is passed on, not answered.
func TestServeAbortHandlerPassesThrough(t *testing.T) {
	route := "/test/observe/abort"
	mux := Mux(Get(route, func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	w := httptest.NewRecorder()
	defer func() {
		v := recover()
		if err, _ := v.(error); !errors.Is(err, http.ErrAbortHandler) {
			t.Errorf("recovered %v, want http.ErrAbortHandler", v)
		}
		if w.Body.Len() != 0 {
			t.Errorf("an aborted reply has a body: %q", w.Body)
		}
	}()
	mux.ServeHTTP(w, httptest.NewRequest("GET", route, nil))
	t.Error("ServeHTTP returned: the abort was swallowed")
}

// The recorders are pooled: a request's reason must not stay for the next one.
func TestServeNoReasonCarriedOver(t *testing.T) {
	route := "/test/observe/carry-over"
	var n int
	mux := Mux(Get(route, func(w http.ResponseWriter, r *http.Request) {
		n++
		if n%2 == 1 {
			Fail(w, r, outcome.Refuse(outcome.Reason_SOLD_OUT))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	before := routeCounts(t, route)
	for range 10 {
		serveHTTP(t, mux, httptest.NewRecorder(), httptest.NewRequest("GET", route, nil))
	}
	want := map[string]float64{"409 SOLD_OUT": 5, "200 OK": 5}
	if got := countsSince(t, route, before); !maps.Equal(got, want) {
		t.Errorf("counted %v, want %v", got, want)
	}
}

// Concurrent requests of one route are each counted once, under their own labels.
func TestServeCountsConcurrent(t *testing.T) {
	route := "/test/observe/concurrent"
	mux := Mux(Get(route, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("k") {
		case "sold":
			Fail(w, r, outcome.Refuse(outcome.Reason_SOLD_OUT))
		case "panic":
			panic("boom")
		default:
			OK(w, "thing", observed{1})
		}
	}))
	before, beforeDur := routeCounts(t, route), durationCount(t, route)
	const each = 40
	kinds := []string{"ok", "sold", "panic"}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, k := range kinds {
		for range each {
			wg.Go(func() {
				<-start
				serveHTTP(t, mux, httptest.NewRecorder(), httptest.NewRequest("GET", route+"?k="+k, nil))
			})
		}
	}
	close(start)
	wg.Wait()
	want := map[string]float64{"200 OK": each, "409 SOLD_OUT": each, "500 INTERNAL": each}
	if got := countsSince(t, route, before); !maps.Equal(got, want) {
		t.Errorf("counted %v, want %v", got, want)
	}
	if got := durationCount(t, route) - beforeDur; got != uint64(len(kinds)*each) {
		t.Errorf("duration observed %d times, want %d", got, len(kinds)*each)
	}
}

func TestServeUnmatched(t *testing.T) {
	mux := Mux(Get("/test/observe/known", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the known route served %s", r.URL.Path)
	}))
	for _, path := range []string{"/test/observe/unknown", "/test/observe/x/../known"} {
		t.Run(path, func(t *testing.T) {
			before, beforeDur := routeCounts(t, "unmatched"), durationCount(t, "unmatched")
			w := httptest.NewRecorder()
			serveHTTP(t, mux, w, httptest.NewRequest("GET", path, nil))
			if w.Code != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %q", w.Code, w.Body)
			}
			if reason := failureReason(t, w); reason != "ROUTE_NOT_FOUND" {
				t.Errorf("error.reason %q, want ROUTE_NOT_FOUND", reason)
			}
			want := map[string]float64{"404 ROUTE_NOT_FOUND": 1}
			if got := countsSince(t, "unmatched", before); !maps.Equal(got, want) {
				t.Errorf("counted under unmatched %v, want %v", got, want)
			}
			if got := durationCount(t, "unmatched") - beforeDur; got != 1 {
				t.Errorf("unmatched duration observed %d times, want 1", got)
			}
			if got := routeCounts(t, path); len(got) != 0 {
				t.Errorf("counted under its own path: %v", got)
			}
		})
	}
}

// deadlineWriter is a writer with what http.ResponseController reaches only through Unwrap.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	deadline time.Time
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.deadline = t
	return nil
}

// A stream (the pages' SSE) gets through the recorder: Flush reaches the writer beneath,
// directly and through http.ResponseController, and so does what the controller finds by
// Unwrap.
func TestServeFlushAndUnwrap(t *testing.T) {
	deadline := time.Now().Add(time.Minute)
	for _, c := range []struct {
		name  string
		flush func(t *testing.T, w http.ResponseWriter)
	}{
		{"Flusher", func(t *testing.T, w http.ResponseWriter) {
			f, ok := w.(http.Flusher)
			if !ok {
				t.Fatalf("the route's writer %T is not an http.Flusher", w)
			}
			f.Flush()
		}},
		{"ResponseController", func(t *testing.T, w http.ResponseWriter) {
			rc := http.NewResponseController(w)
			if err := rc.Flush(); err != nil {
				t.Errorf("ResponseController.Flush: %v", err)
			}
			if err := rc.SetWriteDeadline(deadline); err != nil {
				t.Errorf("ResponseController.SetWriteDeadline: %v", err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			route := "/test/observe/flush/" + c.name
			var inner http.ResponseWriter
			mux := Mux(Get(route, func(w http.ResponseWriter, r *http.Request) {
				inner = w
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "data: 1\n\n")
				c.flush(t, w)
			}))
			before := routeCounts(t, route)
			w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
			serveHTTP(t, mux, w, httptest.NewRequest("GET", route, nil))

			if _, ok := inner.(*recorder); !ok {
				t.Fatalf("the route's writer is %T, not the recorder: nothing tested", inner)
			}
			if !w.Flushed {
				t.Error("the flush did not reach the writer beneath")
			}
			if got := w.Body.String(); got != "data: 1\n\n" {
				t.Errorf("body %q, want the event", got)
			}
			if c.name == "ResponseController" && !w.deadline.Equal(deadline) {
				t.Errorf("write deadline %v, want %v: Unwrap does not reach the writer beneath", w.deadline, deadline)
			}
			want := map[string]float64{"200 OK": 1}
			if got := countsSince(t, route, before); !maps.Equal(got, want) {
				t.Errorf("counted %v, want %v", got, want)
			}
		})
	}
}

// Not Observed, nothing is counted, the route's writer still flushes through, and a panic is
// still a JSON 500.
func TestServeNotObserved(t *testing.T) {
	Observed = false
	t.Cleanup(func() { Observed = true })

	routeOK, routePanic := "/test/observe/off/ok", "/test/observe/off/panic"
	var seen http.ResponseWriter
	mux := Mux(
		Get(routeOK, func(w http.ResponseWriter, r *http.Request) {
			seen = w
			Fail(w, r, outcome.Refuse(outcome.Reason_SOLD_OUT))
		}),
		Get(routePanic, func(w http.ResponseWriter, r *http.Request) { panic("boom") }),
	)
	var before []map[string]float64
	var beforeDur []uint64
	routes := []string{routeOK, routePanic, "unmatched"}
	for _, route := range routes {
		before = append(before, routeCounts(t, route))
		beforeDur = append(beforeDur, durationCount(t, route))
	}

	w := httptest.NewRecorder()
	serveHTTP(t, mux, w, httptest.NewRequest("GET", routeOK, nil))
	if w.Code != http.StatusConflict {
		t.Errorf("status %d, want 409: %q", w.Code, w.Body)
	}
	if rc := http.NewResponseController(seen); rc.Flush() != nil {
		t.Errorf("the route's writer %T does not flush through", seen)
	}

	w = httptest.NewRecorder()
	serveHTTP(t, mux, w, httptest.NewRequest("GET", routePanic, nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("panic: status %d, want 500: %q", w.Code, w.Body)
	}
	if reason := failureReason(t, w); reason != "INTERNAL" {
		t.Errorf("panic: error.reason %q, want INTERNAL", reason)
	}

	w = httptest.NewRecorder()
	serveHTTP(t, mux, w, httptest.NewRequest("GET", "/test/observe/off/unknown", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404: %q", w.Code, w.Body)
	}

	for i, route := range routes {
		if got := countsSince(t, route, before[i]); len(got) != 0 {
			t.Errorf("%s: counted %v, want nothing", route, got)
		}
		if got := durationCount(t, route) - beforeDur[i]; got != 0 {
			t.Errorf("%s: duration observed %d times, want 0", route, got)
		}
	}
}
