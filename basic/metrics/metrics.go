// Package metrics names secbuy's own Prometheus figures, in one place: what each service
// counts, and the probes that read a figure from its store when Prometheus scrapes. All of
// them are in the default registry, which every service serves on /metrics (beside
// go-micro's micro_request_total and micro_request_duration_seconds per RPC endpoint, and
// Go's runtime and process figures). No label carries a user, an order or a request id.
package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Latency buckets, in seconds: from the edge's answers from memory (tens of µs) to an RPC
// timeout.
var latency = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

var (
	// Requests counts the HTTP requests each web service answered, by route (the mux
	// pattern), status code and reason (the refusal's outcome.Reason name, or OK).
	Requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "secbuy_http_requests_total",
		Help: "HTTP requests answered, by route, status code and reason (OK, or the refusal's reason).",
	}, []string{"route", "code", "reason"})

	// Duration is the time from a request's arrival at its route to its answer.
	Duration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "secbuy_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route.",
		Buckets: latency,
	}, []string{"route"})

	// BatchSize is the number of items in each batch: "create_orders" (order-web's
	// CreateOrders calls), "sell" (order-srv's SellBatch calls) and "payments" (the
	// payment rows payment-srv inserts together).
	BatchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "secbuy_batch_size",
		Help:    "Items per batch, by batch (create_orders, sell, payments).",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
	}, []string{"batch"})

	// InflightInUse and InflightCapacity are a web instance's requests in flight to its
	// RPC service (order-web's buys, payment-web's payments: httpapi.Limiter), and the most
	// it lets be; InflightWait is how long a request waited for a slot.
	InflightInUse = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "secbuy_inflight_in_use",
		Help: "Requests (buys, payments) in flight to the RPC service.",
	})
	InflightCapacity = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "secbuy_inflight_capacity",
		Help: "The most requests let be in flight to the RPC service at once (SECBUY_MAX_INFLIGHT).",
	})
	InflightWait = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "secbuy_inflight_wait_seconds",
		Help:    "Time a request waited for an in-flight slot (or until it was refused busy).",
		Buckets: latency,
	})

	// RedisFailOpen counts the presses let through unchecked because Redis could not be
	// asked (no rate limit, no duplicate-press check: the database still refuses a second
	// order).
	RedisFailOpen = promauto.NewCounter(prometheus.CounterOpts{
		Name: "secbuy_redis_fail_open_total",
		Help: "Presses let through without the Redis rate limits and in-flight check because Redis failed.",
	})
)

// Register adds c to the default registry. A collector already there (a second store
// opened in one test process) is left as it is.
func Register(c prometheus.Collector) {
	if err := prometheus.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if !errors.As(err, &dup) {
			panic(err) // a name or label clash: a programming error
		}
	}
}

// Gauge describes one figure of a Probe.
type Gauge struct {
	Name, Help string
	Labels     []string
}

// Probe is a set of gauges read from a store when Prometheus scrapes, by one read function
// that emits the value of gauge i (with its label values). A read that fails or takes over
// two seconds reports nothing that scrape (the figure is absent, not wrong). A reading is
// kept for a second: scrapes that come faster (several Prometheus, or anyone who can reach
// /metrics) do not query the store more often.
type Probe struct {
	descs []*prometheus.Desc
	read  func(ctx context.Context, emit func(i int, v float64, labels ...string)) error

	mu   sync.Mutex // held while reading: concurrent scrapes wait for one reading
	at   time.Time
	last []prometheus.Metric
}

// probeFresh is how long a reading is reported again.
const probeFresh = time.Second

// NewProbe returns the probe of gauges, read by read.
func NewProbe(read func(ctx context.Context, emit func(i int, v float64, labels ...string)) error, gauges ...Gauge) *Probe {
	p := &Probe{read: read}
	for _, g := range gauges {
		p.descs = append(p.descs, prometheus.NewDesc(g.Name, g.Help, g.Labels, nil))
	}
	return p
}

// Describe implements prometheus.Collector.
func (p *Probe) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range p.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *Probe) Collect(ch chan<- prometheus.Metric) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.at) >= probeFresh {
		p.last, p.at = p.readNow(), time.Now()
	}
	for _, m := range p.last {
		ch <- m
	}
}

func (p *Probe) readNow() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []prometheus.Metric
	err := p.read(ctx, func(i int, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(p.descs[i], prometheus.GaugeValue, v, labels...))
	})
	if err != nil {
		slog.Debug("metrics probe", "metric", p.descs[0].String(), "err", err)
		return nil
	}
	return out
}

// Figure returns a probe of one gauge without labels, read by read.
func Figure(name, help string, read func(ctx context.Context) (int64, error)) *Probe {
	return NewProbe(func(ctx context.Context, emit func(int, float64, ...string)) error {
		n, err := read(ctx)
		if err == nil {
			emit(0, float64(n))
		}
		return err
	}, Gauge{Name: name, Help: help})
}
