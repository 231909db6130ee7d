package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// scrape returns what a registry of c alone serves, in the text format. The registry is
// pedantic: what c collects must also match what it describes.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var b strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatalf("format %s: %v", f.GetName(), err)
		}
	}
	return b.String()
}

var probeGauges = []Gauge{
	{Name: "secbuy_test_probe_stock", Help: "Stock left, by commodity.", Labels: []string{"commodity"}},
	{Name: "secbuy_test_probe_pending", Help: "Orders pending."},
}

func TestProbeEmitsWhatReadReturns(t *testing.T) {
	t.Parallel()
	p := NewProbe(func(ctx context.Context, emit func(int, float64, ...string)) error {
		emit(0, 7, "1")
		emit(0, 0, "2")
		emit(1, 3)
		return nil
	}, probeGauges...)
	want := `# HELP secbuy_test_probe_pending Orders pending.
# TYPE secbuy_test_probe_pending gauge
secbuy_test_probe_pending 3
# HELP secbuy_test_probe_stock Stock left, by commodity.
# TYPE secbuy_test_probe_stock gauge
secbuy_test_probe_stock{commodity="1"} 7
secbuy_test_probe_stock{commodity="2"} 0
`
	if got := scrape(t, p); got != want {
		t.Errorf("scraped\n%s\nwant\n%s", got, want)
	}
}

// A read that fails reports nothing, not even what it emitted before failing.
func TestProbeFailedReadEmitsNothing(t *testing.T) {
	t.Parallel()
	p := NewProbe(func(ctx context.Context, emit func(int, float64, ...string)) error {
		emit(0, 7, "1")
		emit(1, 3)
		return errors.New("database down")
	}, probeGauges...)
	if got := scrape(t, p); got != "" {
		t.Errorf("a failed read scraped\n%s\nwant nothing", got)
	}
}

// A probe's read has at most two seconds.
func TestProbeReadHasDeadline(t *testing.T) {
	t.Parallel()
	var left time.Duration
	var has bool
	p := Figure("secbuy_test_probe_deadline", "A figure.", func(ctx context.Context) (int64, error) {
		var deadline time.Time
		deadline, has = ctx.Deadline()
		left = time.Until(deadline)
		return 1, nil
	})
	scrape(t, p)
	if !has || left <= 0 || left > 2*time.Second {
		t.Errorf("read's deadline: set %v, %v left; want at most 2s", has, left)
	}
}

func TestFigure(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		n    int64
		err  error
		want string
	}{
		{"read", 42, nil, "# HELP secbuy_test_figure Outbox rows not sent.\n# TYPE secbuy_test_figure gauge\nsecbuy_test_figure 42\n"},
		{"failed read", 42, errors.New("timeout"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Figure("secbuy_test_figure", "Outbox rows not sent.", func(context.Context) (int64, error) {
				return c.n, c.err
			})
			if got := scrape(t, p); got != c.want {
				t.Errorf("scraped\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// Register leaves a collector already registered as it is (a second store opened in one
// process), and the default registry then serves the first one's figures.
func TestRegisterTwice(t *testing.T) {
	t.Parallel()
	figure := func(n int64) *Probe {
		return Figure("secbuy_test_register_twice", "A figure registered twice.", func(context.Context) (int64, error) {
			return n, nil
		})
	}
	first := figure(1)
	t.Cleanup(func() { prometheus.Unregister(first) })
	Register(first)
	Register(figure(2)) // an equal collector: must not panic
	Register(first)     // the same one again: must not panic

	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var got []float64
	for _, f := range families {
		if f.GetName() == "secbuy_test_register_twice" {
			for _, m := range f.GetMetric() {
				got = append(got, m.GetGauge().GetValue())
			}
		}
	}
	if len(got) != 1 || got[0] != 1 {
		t.Errorf("served %v, want the first collector's [1]", got)
	}
}

// A collector that clashes with a registered one (same name, other labels) is a
// programming error: Register panics.
func TestRegisterClashPanics(t *testing.T) {
	t.Parallel()
	first := Figure("secbuy_test_register_clash", "A figure.", func(context.Context) (int64, error) { return 1, nil })
	t.Cleanup(func() { prometheus.Unregister(first) })
	Register(first)
	clash := NewProbe(func(context.Context, func(int, float64, ...string)) error { return nil },
		Gauge{Name: "secbuy_test_register_clash", Help: "A figure.", Labels: []string{"x"}})
	defer func() {
		if recover() == nil {
			t.Error("Register of a clashing collector did not panic")
		}
	}()
	Register(clash)
}

// secbuy's own metrics are in the default registry, so every /metrics serves them.
func TestMetricsRegistered(t *testing.T) {
	t.Parallel()
	for _, c := range []prometheus.Collector{Requests, Duration, BatchSize, InflightInUse, InflightCapacity, InflightWait, RedisFailOpen} {
		err := prometheus.Register(c)
		var dup prometheus.AlreadyRegisteredError
		if !errors.As(err, &dup) {
			if err == nil {
				prometheus.Unregister(c)
			}
			t.Errorf("%T: registering it again gave %v, want AlreadyRegisteredError", c, err)
		}
	}
}
