// Package svc builds the go-micro pieces every secbuy service uses the same way: the NATS
// registry, an RPC service that drains on stop, and a registered web service with an HTTP
// server that has timeouts and drains on stop.
package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go-micro.dev/v6"
	"go-micro.dev/v6/client"
	"go-micro.dev/v6/logger"
	"go-micro.dev/v6/registry"
	natsreg "go-micro.dev/v6/registry/nats"
	"go-micro.dev/v6/server"
	"go-micro.dev/v6/web"
)

// SetupLog makes slog the process's logger, at level ("debug", "info", "warn", "error"),
// tagged with the service name, and quiets go-micro's own chatter to warnings.
func SetupLog(service, level string) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})
	slog.SetDefault(slog.New(h).With("service", service))
	_ = logger.Init(logger.WithLevel(logger.WarnLevel))
}

// Registry returns go-micro's NATS registry on natsURL.
func Registry(natsURL string) registry.Registry {
	return natsreg.NewNatsRegistry(registry.Addrs(natsURL))
}

// Client returns a go-micro RPC client that gives each call timeout, retries (twice) a call
// that failed in transport, and passes over instances that could not be reached.
func Client(reg registry.Registry, timeout time.Duration) client.Client {
	return client.NewClient(
		client.Registry(reg),
		client.Selector(newSkipDead(reg)),
		client.RequestTimeout(timeout),
		client.Retries(2),
		client.Retry(retryTransport),
		client.PoolSize(256),
	)
}

// NewRPC returns an RPC service named name on addr. Its server waits for in-flight calls
// when it stops, so SIGTERM never cuts an answer off.
func NewRPC(ctx context.Context, name, addr string, reg registry.Registry, cli client.Client) micro.Service {
	srv := server.NewRPCServer(server.Name(name), server.Address(addr), server.Wait(nil))
	return micro.NewService(name,
		micro.Server(srv),
		micro.Client(cli),
		micro.Registry(reg),
		micro.Context(ctx),
		micro.HandleSignal(false),
		micro.RegisterTTL(30*time.Second),
		micro.RegisterInterval(10*time.Second),
		micro.AfterStart(func() error {
			slog.Info("serving", "name", name, "addr", srv.Options().Address)
			return nil
		}),
	)
}

// SignalContext is cancelled by SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// RunWeb serves h on addr, registered as name, until ctx is done; then it deregisters and
// lets in-flight requests finish (up to 10 s).
func RunWeb(ctx context.Context, name, addr string, reg registry.Registry, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
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
