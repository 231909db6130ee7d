package svc

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go-micro.dev/v6/logger"

	"secbuy/basic/config"
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
	setupLog(service, cfg.LogLevel)
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

// setupLog makes slog the process's logger, at level ("debug", "info", "warn", "error"),
// tagged with the service name, and quiets go-micro's own chatter to warnings.
func setupLog(service, level string) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})
	slog.SetDefault(slog.New(h).With("service", service))
	_ = logger.Init(logger.WithLevel(logger.WarnLevel))
}
