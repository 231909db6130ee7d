package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profiler captures CPU and heap profiles of every service during a scenario, from the
// pprof endpoints the services serve when scripts/suite.sh gave them a debug address
// (SECBUY_DEBUG_ADDR; it writes the address to run/NAME.debug).
type profiler struct {
	dir    string            // where profiles go; "" for none
	addrs  map[string]string // service → debug address
	client *http.Client
}

func newProfiler(dir, runDir string) (*profiler, error) {
	p := &profiler{dir: dir, addrs: map[string]string{}, client: &http.Client{Timeout: 5 * time.Minute}}
	if dir == "" {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range serviceNames {
		b, err := os.ReadFile(filepath.Join(runDir, name+".debug"))
		if err != nil {
			return nil, fmt.Errorf("-profile: no debug address of %s (start the suite with `make bench`, which gives each service one): %w", name, err)
		}
		p.addrs[name] = strings.TrimSpace(string(b))
	}
	return p, nil
}

// during runs f while every service records a CPU profile, for about d, and then writes
// DIR/SCENARIO-SERVICE.cpu.pprof and .heap.pprof. Without a directory it just runs f.
func (p *profiler) during(scenario string, d time.Duration, f func()) {
	if p.dir == "" {
		f()
		return
	}
	secs := max(1, int(d.Seconds()))
	var wg sync.WaitGroup
	for name, addr := range p.addrs {
		wg.Go(func() {
			p.fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs),
				filepath.Join(p.dir, scenario+"-"+name+".cpu.pprof"))
		})
	}
	f()
	wg.Wait()
	for name, addr := range p.addrs {
		p.fetch("http://"+addr+"/debug/pprof/heap", filepath.Join(p.dir, scenario+"-"+name+".heap.pprof"))
	}
}

func (p *profiler) fetch(url, file string) {
	rsp, err := p.client.Get(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", url, err)
		return
	}
	defer rsp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", file, err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, rsp.Body); err != nil {
		fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", url, err)
	}
}

// ctxSleep waits d or until ctx ends.
func ctxSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
