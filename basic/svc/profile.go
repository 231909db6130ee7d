package svc

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// Profile starts a CPU profile when SECBUY_PROFILE_DIR is set (a development knob, used by
// `make bench` profiling); the returned stop writes it and a heap profile to
// DIR/service.cpu.pprof and DIR/service.heap.pprof. Without the variable it does nothing.
func Profile(service string) (stop func()) {
	dir := os.Getenv("SECBUY_PROFILE_DIR")
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
