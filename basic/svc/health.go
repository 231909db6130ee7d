package svc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go-micro.dev/v6/health"
)

// Readiness. go-micro's health package keeps the checks, process-wide; an instance is
// ready when every critical check passes. Every service has one check of its own,
// "serving": its servers are registered and it has not been asked to stop. The check is
// the first thing to fail when an instance stops (Group.Run), so a load balancer leaves
// it before it drains.
var (
	registered   atomic.Int32 // servers registered and not withdrawn
	shuttingDown atomic.Bool
	serving      sync.Once
)

var (
	errStopping      = errors.New("stopping")
	errNotRegistered = errors.New("not registered")
)

// Check adds a critical readiness check: the instance is not ready while check fails (or
// takes over a second).
func Check(name string, check health.CheckFunc) {
	addServing()
	health.RegisterCheck(health.Check{Name: name, Check: check, Timeout: time.Second, Critical: true})
}

// Report adds a check that /health/ready shows without being unready when it fails: for
// a server the instance works without, as order-web does without Redis (it fails open).
func Report(name string, check health.CheckFunc) {
	addServing()
	health.RegisterCheck(health.Check{Name: name, Check: check, Timeout: time.Second})
}

func addServing() {
	serving.Do(func() {
		health.RegisterCheck(health.Check{Name: "serving", Timeout: time.Second, Critical: true,
			Check: func(context.Context) error { return servingErr() }})
	})
}

func servingErr() error {
	switch {
	case shuttingDown.Load():
		return errStopping
	case registered.Load() == 0:
		return errNotRegistered
	}
	return nil
}

// withHealth serves /health, /health/live and /health/ready from go-micro's health
// package, /metrics (the default Prometheus registry: secbuy's figures, go-micro's per
// RPC endpoint, Go's runtime and the process's) and everything else from h (nil: 404).
func withHealth(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	addServing()
	health.RegisterHandlers(mux)
	metrics := promhttp.Handler()
	if h == nil {
		h = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/health"):
			mux.ServeHTTP(w, r)
		case r.URL.Path == "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// NATSCheck passes when a TCP connection to one of urls (comma-separated nats:// URLs)
// opens: the registry and the stream are reachable.
func NATSCheck(urls string) health.CheckFunc {
	return func(ctx context.Context) error {
		var errs []error
		for _, u := range strings.Split(urls, ",") {
			u = strings.TrimSpace(u)
			if i := strings.Index(u, "://"); i >= 0 {
				u = u[i+3:]
			}
			if at := strings.LastIndex(u, "@"); at >= 0 {
				u = u[at+1:]
			}
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", u)
			if err == nil {
				return c.Close()
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
}
