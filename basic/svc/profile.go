package svc

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
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
