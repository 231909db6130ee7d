package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"secbuy/basic/metrics"
	"secbuy/proto/outcome"
)

// Observed reports whether the web routes count their requests (metrics.Requests and
// metrics.Duration); SECBUY_METRICS=false turns it off, to measure what counting costs.
var Observed = true

// serve returns h as the handler of route: a panic in h becomes a JSON 500 without a stack trace (and one log line), or, if the
// answer had begun, an aborted one; and, when Observed, each answer is counted under route
// by its status and reason (see note).
func serve(route string, h http.HandlerFunc) http.HandlerFunc {
	var m *routeMetrics
	if Observed {
		m = &routeMetrics{route: route, duration: metrics.Duration.WithLabelValues(route)}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var start time.Time
		if m != nil {
			start = time.Now()
		}
		rec := recorders.Get().(*recorder)
		*rec = recorder{ResponseWriter: w}
		defer func() {
			// recover must be called by the deferred function itself.
			answered := true
			if v := recover(); v != nil {
				answered = answerPanic(rec, r, v, rec.code != 0)
			}
			if m != nil {
				m.duration.Observe(time.Since(start).Seconds())
				m.count(rec.code, rec.reason, rec.noted)
			}
			rec.ResponseWriter = nil
			recorders.Put(rec)
			if !answered {
				panic(http.ErrAbortHandler)
			}
		}()
		h(rec, r)
	}
}

// answerPanic answers the request whose handler panicked with v: a JSON 500, and one log
// line. It returns false if it could not, because v is http.ErrAbortHandler (the handler
// asked to abort) or the answer had begun (written): the caller aborts the response.
func answerPanic(w http.ResponseWriter, r *http.Request, v any, written bool) bool {
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		return false
	}
	slog.ErrorContext(r.Context(), "handler panic", "path", r.URL.Path, "panic", v)
	if written {
		note(w, outcome.Reason_INTERNAL)
		return false
	}
	Fail(w, r, outcome.Refuse(outcome.Reason_INTERNAL))
	return true
}

// note records, on a counted request's writer, the reason of the refusal it is answered
// with (or ORDER_PENDING for a 202).
func note(w http.ResponseWriter, reason outcome.Reason) {
	if rec, ok := w.(*recorder); ok {
		rec.reason, rec.noted = reason, true
	}
}

// recorder is the writer of a counted request: it keeps the status and the reason.
type recorder struct {
	http.ResponseWriter
	code   int
	reason outcome.Reason
	noted  bool
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (rec *recorder) WriteHeader(code int) {
	if rec.code == 0 {
		rec.code = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return rec.ResponseWriter.Write(b)
}

// Flush lets a stream (the pages' SSE) through.
func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap serves http.ResponseController.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// routeMetrics are one route's counters, one per status and reason, looked up without
// formatting labels on each request.
type routeMetrics struct {
	route    string
	duration prometheus.Observer
	counts   sync.Map // countKey → prometheus.Counter
}

type countKey struct {
	code   int
	reason outcome.Reason
	noted  bool
}

func (m *routeMetrics) count(code int, reason outcome.Reason, noted bool) {
	if code == 0 {
		code = http.StatusOK // nothing written: net/http answers 200
	}
	k := countKey{code, reason, noted}
	c, ok := m.counts.Load(k)
	if !ok {
		c, _ = m.counts.LoadOrStore(k, metrics.Requests.WithLabelValues(m.route, strconv.Itoa(code), reasonLabel(code, reason, noted)))
	}
	c.(prometheus.Counter).Inc()
}

// reasonLabel is a refusal's reason name; OK for an answer below 400 without one, OTHER
// for an error status written without a reason.
func reasonLabel(code int, reason outcome.Reason, noted bool) string {
	switch {
	case noted:
		return reason.String()
	case code < 400:
		return "OK"
	}
	return "OTHER"
}
