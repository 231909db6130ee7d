// Package svc builds the go-micro pieces every secbuy service uses the same way: the
// process's start (Main), the NATS registry, RPC servers and clients that drain on stop, a
// registered web service with an HTTP server that has timeouts and drains on stop, and the
// Group that runs a service's parts and stops them in one order.
package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go-micro.dev/v6/client"
	gclient "go-micro.dev/v6/client/grpc"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/server"
	gserver "go-micro.dev/v6/server/grpc"
	"go-micro.dev/v6/web"
	prom "go-micro.dev/v6/wrapper/monitoring/prometheus"
	microotel "go-micro.dev/v6/wrapper/trace/opentelemetry"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/basic/tracing"
)

// Registry returns go-micro's NATS registry on cfg's NATS servers, with its credentials
// and TLS (see connect.NATS.Registry).
func Registry(cfg config.Config) (registry.Registry, error) {
	return connect.NATSOf(cfg).Registry()
}

// GRPCSuffix ends the registry name under which each service is also served over gRPC.
const GRPCSuffix = ".grpc"

// Internal returns the name secbuy's own callers use for service name: its gRPC twin.
func Internal(name string) string { return name + GRPCSuffix }

// Client returns the gRPC client secbuy's services call each other with (by Internal
// names). Each call gets timeout; a call that failed in transport is retried (twice), and
// instances that could not be reached are passed over. An instance not heard from in ttl
// (its registry announcements stopped: it was killed) is dropped.
func Client(reg registry.Registry, timeout, ttl time.Duration) client.Client {
	var traced []client.Option
	if tracing.Enabled() {
		traced = append(traced, client.WrapCall(microotel.NewCallWrapper()))
	}
	return gclient.NewClient(append(traced,
		client.Registry(reg),
		client.Selector(newSkipDead(reg, ttl)),
		client.RequestTimeout(timeout),
		client.Retries(2),
		client.Retry(retryTransport),
		client.Backoff(retryAt),
		client.PoolSize(64),
	)...)
}

// Server serves one set of handlers twice. Under name it speaks go-micro's default RPC, so
// the micro CLI and any go-micro client reach it by the public name; under Internal(name) it
// speaks gRPC, which secbuy's own callers use: on this kind of machine go-micro's gRPC pair
// makes about 26,000 calls/s where the default one makes about 5,700, because the default
// transport writes every HTTP header line with its own system call. Beside them it serves
// the health endpoints and /metrics (go-micro's micro_request_total and
// micro_request_duration_seconds per endpoint, Go's runtime figures) on cfg.HealthAddr.
type Server struct {
	servers    []server.Server
	healthAddr string
	stopDelay  time.Duration
}

// NewServer returns a Server for name; the default RPC listens on addr and gRPC on the same
// host with a free port. Both announce themselves every cfg.RegisterInterval and wait for
// calls in flight when they stop.
func NewServer(name, addr string, reg registry.Registry, cfg config.Config) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", name, addr, err)
	}
	var traced []server.Option
	if tracing.Enabled() {
		traced = append(traced, server.WrapHandler(microotel.NewHandlerWrapper()))
	}
	opts := func(n, a string) []server.Option {
		return append([]server.Option{server.Name(n), server.Address(a), server.Registry(reg),
			server.RegisterTTL(cfg.RegisterTTL.Duration), server.RegisterInterval(cfg.RegisterInterval.Duration),
			server.WrapHandler(prom.NewHandlerWrapper())}, append(faultOptions(), traced...)...)
	}
	Check("nats", NATSCheck(cfg.NATSURL)) // the registry, and the stream where there is one
	return &Server{
		servers: []server.Server{
			server.NewRPCServer(append(opts(name, addr), server.Wait(nil), server.Codec("application/json", strictJSON))...),
			gserver.NewServer(append(opts(Internal(name), net.JoinHostPort(host, "0")), gserver.GracefulStopTimeout(15*time.Second))...),
		},
		healthAddr: cfg.HealthAddr,
		stopDelay:  cfg.StopDelay.Duration,
	}, nil
}

// Handle registers handlers on both servers; register is a generated Register...Handler.
func (s *Server) Handle(register func(server.Server) error) error {
	for _, srv := range s.servers {
		if err := register(srv); err != nil {
			return err
		}
	}
	return nil
}

// Run serves until ctx is done. Then it withdraws both servers from the registry (callers
// drop them on the registry's delete event), keeps serving the calls already on their way
// for the stop delay, and drains. (An announcement due during the delay may show the
// instance again for a moment; the calls it draws are served, or retried elsewhere once
// the drain has begun, and Stop withdraws it again.)
func (s *Server) Run(ctx context.Context) error {
	var hs *http.Server
	if s.healthAddr != "" {
		l, err := net.Listen("tcp", s.healthAddr)
		if err != nil {
			return fmt.Errorf("health address %s: %w", s.healthAddr, err)
		}
		hs = &http.Server{Handler: withHealth(nil), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(l) }()
		slog.Info("health", "addr", l.Addr().String())
	}
	for i, srv := range s.servers {
		if err := srv.Start(); err != nil {
			for _, started := range s.servers[:i] {
				_ = started.Stop()
			}
			if hs != nil {
				_ = hs.Close()
			}
			return fmt.Errorf("start %s: %w", srv.Options().Name, err)
		}
		slog.Info("serving", "name", srv.Options().Name, "addr", srv.Options().Address)
	}
	registered.Add(1)
	<-ctx.Done()
	registered.Add(-1)
	for _, srv := range s.servers {
		if d, ok := srv.(interface{ Deregister() error }); ok {
			if err := d.Deregister(); err != nil {
				slog.Warn("deregister", "name", srv.Options().Name, "err", err)
			}
		}
	}
	time.Sleep(s.stopDelay)
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Stop())
	}
	if hs != nil {
		errs = append(errs, hs.Close())
	}
	return errors.Join(errs...)
}

// Web returns the server part (see Group.Serve) of a web service: it serves h on addr,
// with /health/live and /health/ready beside it, registered as name, until its context is
// done; then it goes on serving for cfg.StopDelay while it reports not ready (a load
// balancer's health check takes it out), deregisters and lets in-flight requests finish
// (up to 10 s). cfg's HTTP timeouts bound reading a request and writing its answer (the
// header alone must come within half the read timeout).
func Web(name, addr string, reg registry.Registry, h http.Handler, cfg config.Config) func(context.Context) error {
	// Shown, but not making the instance unready: a web instance goes on answering from its
	// registry cache and its sold-out snapshots while NATS is away, and a NATS blip must not
	// take every instance out of the load balancer at once.
	Report("nats", NATSCheck(cfg.NATSURL))
	if tracing.Enabled() {
		// A public edge: each request is a trace of its own, linked to the one the client
		// names (if any), whose sampling decision must not decide secbuy's. A span is named
		// by its method and, once the mux has matched it, the route's pattern (otelhttp
		// renames it then): "POST /order/sell", never a raw path.
		public := func(*http.Request) bool { return true }
		h = otelhttp.NewHandler(h, name, otelhttp.WithPublicEndpointFn(public),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				if r.Pattern == "" {
					return r.Method
				}
				return r.Method + " " + r.Pattern
			}))
	}
	return func(ctx context.Context) error {
		return runWeb(ctx, name, addr, reg, withHealth(h), cfg)
	}
}

func runWeb(ctx context.Context, name, addr string, reg registry.Registry, h http.Handler, cfg config.Config) error {
	read := cfg.HTTPReadTimeout.Duration
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: read / 2,
		ReadTimeout:       read,
		WriteTimeout:      cfg.HTTPWriteTimeout.Duration,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ws := web.NewService(
		web.Name(name),
		web.Address(addr),
		web.Registry(reg),
		web.Server(hs),
		web.Handler(h),
		web.RegisterTTL(cfg.RegisterTTL.Duration),
		web.RegisterInterval(cfg.RegisterInterval.Duration),
		web.HandleSignal(false),
		web.Context(ctx),
	)
	if err := ws.Start(); err != nil {
		return fmt.Errorf("start %s on %s: %w", name, addr, err)
	}
	slog.Info("listening", "addr", ws.Options().Address, "name", name)
	registered.Add(1)
	<-ctx.Done()
	registered.Add(-1)
	time.Sleep(cfg.StopDelay.Duration)
	// Deregister first, then drain: the web package's own Stop only closes the listener.
	if err := ws.Stop(); err != nil && !isClosed(err) {
		slog.Warn("stop web service", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown reports the listener the web package already closed; it still drains.
	if err := hs.Shutdown(sctx); err != nil && !isClosed(err) {
		return err
	}
	return nil
}

func isClosed(err error) bool {
	return errors.Is(err, http.ErrServerClosed) || strings.Contains(err.Error(), "use of closed network connection")
}
