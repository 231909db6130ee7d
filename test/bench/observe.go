package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"secbuy/test/load"
)

// observeRounds is how many bursts each of metrics on and off gets, alternating.
const observeRounds = 3

// observe is what watching a sale costs (issue 13): it restarts the one-instance suite
// with the web routes' request counting off (SECBUY_METRICS=false) and on (the default),
// observeRounds times each, alternating, and runs the burst on each; then once more with
// every span written to a file (tracing on). Tracing is off in every other row, as it is
// by default. The last metrics-on row's note gives the median on/off ratio of the burst's
// rate; burst-traced's, its rate over the median metrics-off one.
func (b *bench) observe(ctx context.Context, base int64) []row {
	var rows []row
	var off, on []float64
	burst := func(name string, env ...string) (float64, bool) {
		if err := b.restart(ctx, env...); err != nil {
			rows = append(rows, row{name: name, err: err})
			return 0, false
		}
		base += 1_000_000
		r := b.burst(ctx, base)
		r.name = name
		rows = append(rows, r)
		return r.stats.rate, r.err == nil
	}
	for range observeRounds {
		if rate, ok := burst("burst-metrics-off", "SECBUY_METRICS=false"); ok {
			off = append(off, rate)
		}
		if rate, ok := burst("burst-metrics-on"); ok {
			on = append(on, rate)
		}
	}
	if len(on) > 0 && len(off) > 0 {
		rows[len(rows)-1].note = fmt.Sprintf("metrics on/off: %.3f (median of %d bursts each)", median(on)/median(off), len(on))
	}
	spans := filepath.Join(b.runDir, "bench-spans.jsonl")
	if rate, ok := burst("burst-traced", "SECBUY_METRICS=false", "SECBUY_TRACE_FILE="+spans); ok && len(off) > 0 {
		rows[len(rows)-1].note = fmt.Sprintf("every span to a file; traced/untraced: %.3f", rate/median(off))
	}
	_ = os.Remove(spans)
	if err := b.restart(ctx); err != nil { // as the other scenarios expect it
		rows = append(rows, row{name: "observe", err: err})
	}
	return rows
}

// restart restarts the suite (scripts/suite.sh up), of one instance of everything unless
// env says INSTANCES=N, with env added to the services' environment.
func (b *bench) restart(ctx context.Context, env ...string) error {
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(moduleRoot(), "scripts", "suite.sh"), "up")
	cmd.Env = append(append(os.Environ(), "INSTANCES=1"), env...) // the last of a name wins
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "bench: %s: restarting the suite with %v\n", b.scenario, env)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("suite.sh up with %v: %w", env, err)
	}
	b.auditor = load.NewAuditorOn(b.nats) // the services are new
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}
