package test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"secbuy/test/load"
	"secbuy/test/suite"
)

// TestObservability runs the whole suite with traces written to a file and checks what a
// shop watching a sale sees: every service ready and serving /metrics; presses counted by
// route, status and reason; the srv figures (batches, outbox, stock left, pending
// payments, the consumer); one buy's trace crossing order-web, order-srv, stock-srv (and
// its Postgres statements) and, through the outbox and NATS, payment-srv; and JSON log
// lines.
func TestObservability(t *testing.T) {
	spans := filepath.Join(t.TempDir(), "spans.jsonl")
	s, cfg := newSale(t, 1, 1, "SECBUY_TRACE_FILE="+spans)
	c := load.Client(1)

	for _, name := range suite.Services {
		s.WaitReady(name, 10*time.Second)
	}

	id, err := createCommodity(cfg, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	winner, loser := cfg.UserBase+1, cfg.UserBase+2
	clientTrace := randomHex(16)
	// The buy names the client's trace (W3C traceparent): order-web, a public edge, starts a
	// trace of its own that links to it, by which the test finds the buy's trace.
	code := press(t, c, s, winner, id, "00-"+clientTrace+"-"+randomHex(8)+"-01")
	if code != http.StatusOK {
		t.Fatalf("buy: %d", code)
	}
	if code := press(t, c, s, loser, id, ""); code != http.StatusConflict {
		t.Errorf("second buyer: %d, want 409 sold out", code)
	}
	if code := press(t, c, s, winner, id, ""); code != http.StatusConflict {
		t.Errorf("winner again: %d, want 409 already bought", code)
	}

	web := scrape(t, c, s.URL("order-web"))
	for _, want := range []struct {
		code, reason string
	}{{"200", "OK"}, {"409", "SOLD_OUT"}, {"409", "ALREADY_BOUGHT"}} {
		if n := value(web, "secbuy_http_requests_total", "route", "/order/sell", "code", want.code, "reason", want.reason); n < 1 {
			t.Errorf("secbuy_http_requests_total{route=/order/sell,code=%s,reason=%s} = %v, want ≥ 1", want.code, want.reason, n)
		}
	}
	if n := histogramCount(web, "secbuy_http_request_duration_seconds", "route", "/order/sell"); n < 3 {
		t.Errorf("secbuy_http_request_duration_seconds{route=/order/sell} counts %d, want ≥ 3", n)
	}
	if n := value(web, "secbuy_inflight_capacity"); n <= 0 {
		t.Errorf("secbuy_inflight_capacity = %v", n)
	}
	if n := histogramCount(web, "secbuy_batch_size", "batch", "create_orders"); n < 1 {
		t.Errorf("order-web's create_orders batches: %d", n)
	}

	orderSrv := scrape(t, c, s.InstanceURL("order-srv"))
	if n := histogramCount(orderSrv, "secbuy_batch_size", "batch", "sell"); n < 1 {
		t.Errorf("order-srv's sell batches: %d", n)
	}
	if n := histogramCount(orderSrv, "micro_request_duration_seconds", "endpoint", "OrderService.CreateOrders"); n < 1 {
		t.Errorf("order-srv's CreateOrders latencies: %d", n)
	}
	for _, name := range []string{"secbuy_outbox_backlog", "secbuy_outbox_lag_seconds", "secbuy_orders_pending", "go_sql_max_open_connections"} {
		if _, ok := orderSrv[name]; !ok {
			t.Errorf("order-srv has no %s", name)
		}
	}
	if n, ok := find(scrape(t, c, s.InstanceURL("stock-srv")), "secbuy_stock_left", "commodity", fmt.Sprint(id)); !ok || n != 0 {
		t.Errorf("stock-srv: secbuy_stock_left{commodity=%d} = %v (reported: %v), want 0", id, n, ok)
	}
	err = suite.Eventually(10*time.Second, func() error {
		pay := scrape(t, c, s.InstanceURL("payment-srv"))
		if n := histogramCount(pay, "secbuy_batch_size", "batch", "payments"); n < 1 {
			return fmt.Errorf("payment-srv's payment batches: %d", n)
		}
		if _, ok := find(pay, "secbuy_jetstream_consumer_ack_pending", "consumer", "payment-srv"); !ok {
			return errors.New("payment-srv reports no consumer figures")
		}
		if n := value(pay, "secbuy_payments_pending"); n < 1 {
			return fmt.Errorf("secbuy_payments_pending = %v, want ≥ 1", n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// The buy's trace: spans from the four services under the client's trace id, batch
	// spans linking to it, a Postgres statement of stock-srv's, and payment-srv's work.
	var trace []span
	var traceID string
	err = suite.Eventually(20*time.Second, func() error {
		if traceID == "" {
			edge := slices.IndexFunc(spansOf(t, spans, ""), func(sp span) bool {
				return sp.service() == "order-web" && slices.ContainsFunc(sp.Links, func(l link) bool { return l.SpanContext.TraceID == clientTrace })
			})
			if edge < 0 {
				return fmt.Errorf("no order-web span links to the client's trace %s", clientTrace)
			}
			if id := spansOf(t, spans, "")[edge].SpanContext.TraceID; id == clientTrace {
				t.Fatalf("order-web took the client's trace %s as its own", clientTrace)
			} else {
				traceID = id
			}
		}
		trace = spansOf(t, spans, traceID)
		services := map[string]bool{}
		for _, sp := range trace {
			services[sp.service()] = true
		}
		for _, want := range []string{"order-web", "order-srv", "stock-srv", "payment-srv"} {
			if !services[want] {
				return fmt.Errorf("no span of %s in trace %s (%d spans: %v)", want, traceID, len(trace), names(trace))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trace %s: %d spans: %v", traceID, len(trace), names(trace))
	has := func(service, name string) *span {
		for i, sp := range trace {
			if sp.service() == service && sp.Name == name {
				return &trace[i]
			}
		}
		t.Errorf("trace %s has no span %q of %s: %v", traceID, name, service, names(trace))
		return nil
	}
	for _, batch := range []struct{ service, name string }{
		{"order-web", "order-web CreateOrders"}, {"order-srv", "order-srv SellBatch"},
		{"order-srv", "order-srv record orders"}, {"payment-srv", "consume payment.payevent"},
	} {
		if sp := has(batch.service, batch.name); sp != nil && !slices.ContainsFunc(sp.Links, func(l link) bool { return l.SpanContext.TraceID == traceID }) {
			t.Errorf("%s: no link to the buyer's trace", batch.name)
		}
	}
	has("order-web", "POST /order/sell") // the route's pattern
	has("stock-srv", "go.micro.secbuy.srv.stock.grpc.StockService.SellBatch")
	has("order-srv", "publish payment.payevent")
	if !slices.ContainsFunc(trace, func(sp span) bool { return sp.service() == "stock-srv" && sp.attr("db.system") != "" }) {
		t.Errorf("no Postgres statement of stock-srv in the trace: %v", names(trace))
	}

	// Logs: one JSON object per line (stderr is not a terminal), each naming its service.
	for _, name := range suite.Services {
		sc := bufio.NewScanner(strings.NewReader(s.LogOf(name)))
		lines := 0
		for sc.Scan() {
			var line struct{ Service, Level, Msg string }
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Service != name || line.Level == "" {
				t.Errorf("%s log: not a JSON line of %s: %q", name, name, sc.Text())
				break
			}
			lines++
		}
		if lines == 0 {
			t.Errorf("%s logged nothing", name)
		}
	}
}

// press is one buy by user of commodity id, with traceparent if not empty.
func press(t *testing.T, c *http.Client, s *suite.Suite, user, id int64, traceparent string) int {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL("order-web")+"/order/sell", strings.NewReader(fmt.Sprintf(`{"id":%d}`, id)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token(user))
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// scrape reads base's /metrics.
func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var parser expfmt.TextParser
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics: %v", base, err)
	}
	return fams
}

// metric returns the series of name whose labels include labels (name, value pairs).
func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f, ok := fams[name]
	if !ok {
		return nil
	}
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && got[labels[i]] == labels[i+1]
		}
		if match {
			return m
		}
	}
	return nil
}

// find returns the value of a counter or gauge series, and whether there is one.
func find(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	m := metric(fams, name, labels...)
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	}
	return m.GetGauge().GetValue(), true
}

func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	v, _ := find(fams, name, labels...)
	return v
}

func histogramCount(fams map[string]*dto.MetricFamily, name string, labels ...string) uint64 {
	return metric(fams, name, labels...).GetHistogram().GetSampleCount()
}

// span is what the test reads of a span the stdout exporter wrote.
type span struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Links       []link
	Attributes  []keyValue
	Resource    []keyValue
}

type link struct {
	SpanContext struct{ TraceID, SpanID string }
}

type keyValue struct {
	Key   string
	Value struct{ Value any }
}

func (sp span) service() string {
	for _, kv := range sp.Resource {
		if kv.Key == "service.name" {
			return fmt.Sprint(kv.Value.Value)
		}
	}
	return ""
}

func (sp span) attr(key string) string {
	for _, kv := range sp.Attributes {
		if kv.Key == key {
			return fmt.Sprint(kv.Value.Value)
		}
	}
	return ""
}

// spansOf reads the spans of trace traceID ("": every span) from file (one JSON span per
// line).
func spansOf(t *testing.T, file, traceID string) []span {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []span
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var sp span
		if err := dec.Decode(&sp); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Logf("spans file: %v", err) // a line still being written
			}
			return out
		}
		if traceID == "" || sp.SpanContext.TraceID == traceID {
			out = append(out, sp)
		}
	}
}

func names(spans []span) []string {
	var out []string
	for _, sp := range spans {
		name := strings.Join(strings.Fields(sp.Name), " ") // a statement's, on one line
		if len(name) > 60 {
			name = name[:60] + "…"
		}
		out = append(out, sp.service()+": "+name)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
