package svc

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

// Profile starts a CPU profile when dir is set (SECBUY_PROFILE_DIR, a development knob
// used by `make bench`); the returned stop writes it and a heap profile to
// dir/service.cpu.pprof and dir/service.heap.pprof. With no dir it does nothing.
func Profile(dir, service string) (stop func()) {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, service+".cpu.pprof"))
	if err != nil {
		slog.Warn("cpu profile", "err", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		slog.Warn("cpu profile", "err", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		h, err := os.Create(filepath.Join(dir, service+".heap.pprof"))
		if err != nil {
			return
		}
		defer h.Close()
		runtime.GC()
		_ = pprof.Lookup("allocs").WriteTo(h, 0)
	}
}

// serveDebug serves net/http/pprof on addr until stop is called.
func serveDebug(addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Warn("debug server", "err", err)
		}
	}()
	slog.Info("debug server (pprof)", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
