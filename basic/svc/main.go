package svc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"go-micro.dev/v6/logger"

	"secbuy/basic/config"
	"secbuy/basic/httpapi"
	"secbuy/basic/logs"
	"secbuy/basic/tracing"
)

// Main is the whole of a service's main: it loads the configuration, sets up the log (and
// profiling, if configured), and calls run with a context that SIGINT or SIGTERM cancels.
// If run fails, the error is logged and the process exits with status 1.
func Main(service string, run func(ctx context.Context, cfg config.Config) error) {
	if err := start(service, run); err != nil {
		slog.Error("exit", "err", err)
		os.Exit(1)
	}
}

func start(service string, run func(context.Context, config.Config) error) error {
	cfg, err := config.Load()
	if err != nil {
		// Not yet a logger of the service's: say it plainly.
		return fmt.Errorf("%s: %w", service, err)
	}
	setupLog(service, cfg.LogLevel, cfg.LogFormat)
	httpapi.Observed = cfg.Metrics
	stopTracing, err := tracing.Setup(context.Background(), service, cfg.TraceFile)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(ctx); err != nil {
			slog.Warn("flush traces", "err", err)
		}
	}()
	debug.SetGCPercent(cfg.GCPercent)
	if cfg.MemLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemLimitMB) << 20)
	}
	defer Profile(cfg.ProfileDir, service)()
	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, cfg)
}

// setupLog makes slog the process's logger (see logs.New), tagged with the service name,
// and quiets go-micro's own chatter to warnings.
func setupLog(service, level, format string) {
	slog.SetDefault(logs.New(os.Stderr, service, level, format))
	_ = logger.Init(logger.WithLevel(logger.WarnLevel))
}
