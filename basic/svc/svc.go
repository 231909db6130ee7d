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
	natsreg "go-micro.dev/v6/registry/nats"
	"go-micro.dev/v6/server"
	gserver "go-micro.dev/v6/server/grpc"
	"go-micro.dev/v6/web"

	"secbuy/basic/config"
)

// Registry returns go-micro's NATS registry on natsURL.
func Registry(natsURL string) registry.Registry {
	return natsreg.NewNatsRegistry(registry.Addrs(natsURL))
}

// GRPCSuffix ends the registry name under which each service is also served over gRPC.
const GRPCSuffix = ".grpc"

// Internal returns the name secbuy's own callers use for service name: its gRPC twin.
func Internal(name string) string { return name + GRPCSuffix }

// Client returns the gRPC client secbuy's services call each other with (by Internal
// names). Each call gets timeout; a call that failed in transport is retried (twice), and
// instances that could not be reached are passed over.
func Client(reg registry.Registry, timeout time.Duration) client.Client {
	return gclient.NewClient(
		client.Registry(reg),
		client.Selector(newSkipDead(reg)),
		client.RequestTimeout(timeout),
		client.Retries(2),
		client.Retry(retryTransport),
		client.PoolSize(64),
	)
}

// Server serves one set of handlers twice. Under name it speaks go-micro's default RPC, so
// the micro CLI and any go-micro client reach it by the public name; under Internal(name) it
// speaks gRPC, which secbuy's own callers use: on this kind of machine go-micro's gRPC pair
// makes about 26,000 calls/s where the default one makes about 5,700, because the default
// transport writes every HTTP header line with its own system call.
type Server struct {
	servers []server.Server
}

// NewServer returns a Server for name; the default RPC listens on addr and gRPC on the same
// host with a free port. Both wait for calls in flight when they stop.
func NewServer(name, addr string, reg registry.Registry) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s address %q: %w", name, addr, err)
	}
	opts := func(n, a string) []server.Option {
		return append([]server.Option{server.Name(n), server.Address(a), server.Registry(reg),
			server.RegisterTTL(30 * time.Second), server.RegisterInterval(10 * time.Second)}, faultOptions()...)
	}
	return &Server{servers: []server.Server{
		server.NewRPCServer(append(opts(name, addr), server.Wait(nil))...),
		gserver.NewServer(append(opts(Internal(name), net.JoinHostPort(host, "0")), gserver.GracefulStopTimeout(15*time.Second))...),
	}}, nil
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

// Run serves until ctx is done, then deregisters and drains both servers.
func (s *Server) Run(ctx context.Context) error {
	for i, srv := range s.servers {
		if err := srv.Start(); err != nil {
			for _, started := range s.servers[:i] {
				_ = started.Stop()
			}
			return fmt.Errorf("start %s: %w", srv.Options().Name, err)
		}
		slog.Info("serving", "name", srv.Options().Name, "addr", srv.Options().Address)
	}
	<-ctx.Done()
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Stop())
	}
	return errors.Join(errs...)
}

// Web returns the server part (see Group.Serve) of a web service: it serves h on addr,
// registered as name, until its context is done; then it deregisters and lets in-flight
// requests finish (up to 10 s). cfg's HTTP timeouts bound reading a request and writing
// its answer (the header alone must come within half the read timeout).
func Web(name, addr string, reg registry.Registry, h http.Handler, cfg config.Config) func(context.Context) error {
	return func(ctx context.Context) error {
		return runWeb(ctx, name, addr, reg, h, cfg.HTTPReadTimeout.Duration, cfg.HTTPWriteTimeout.Duration)
	}
}

func runWeb(ctx context.Context, name, addr string, reg registry.Registry, h http.Handler, read, write time.Duration) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: read / 2,
		ReadTimeout:       read,
		WriteTimeout:      write,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ws := web.NewService(
		web.Name(name),
		web.Address(addr),
		web.Registry(reg),
		web.Server(hs),
		web.Handler(h),
		web.RegisterTTL(30*time.Second),
		web.RegisterInterval(10*time.Second),
		web.HandleSignal(false),
		web.Context(ctx),
	)
	if err := ws.Start(); err != nil {
		return fmt.Errorf("start %s on %s: %w", name, addr, err)
	}
	slog.Info("listening", "addr", ws.Options().Address, "name", name)
	<-ctx.Done()
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
