package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// printTable writes the one table of the run. Numbers are right-aligned; the last two
// columns (failures by reason, invariants) are text.
func printTable(out io.Writer, rows []row) {
	var plain float64
	for _, r := range rows {
		if r.name == "plain" && r.err == nil {
			plain = r.stats.rate
		}
	}
	cells := [][]string{{"scenario", "requests", "req/s", "x plain", "p50 ms", "p99 ms", "max ms",
		"successes", "durable orders/s", "client CPU", "failures by reason", "invariants"}}
	for _, r := range rows {
		if r.err != nil && len(r.run.samples) == 0 {
			cells = append(cells, []string{r.name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "COULD NOT RUN: " + r.err.Error()})
			continue
		}
		st := r.stats
		ratio, durable, check := "-", "-", "-"
		if plain > 0 {
			ratio = fmt.Sprintf("%.2f", st.rate/plain)
		}
		if r.name == "sustained" {
			durable = fmt.Sprintf("%.0f", r.durable)
		}
		switch {
		case r.err != nil:
			check = "COULD NOT CHECK: " + r.err.Error()
		case len(r.violations) > 0:
			check = "BROKEN: " + strings.Join(r.violations, "; ")
		case r.checked:
			check = "OK"
		}
		cells = append(cells, []string{r.name, strconv.Itoa(st.requests), fmt.Sprintf("%.0f", st.rate), ratio,
			ms(st.p50), ms(st.p99), ms(st.max), strconv.Itoa(st.ok), durable, fmt.Sprintf("%.2f", r.run.cpu),
			st.otherString(), check})
	}
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			switch {
			case i == len(row)-1:
				b.WriteString(c)
			case i == 0 || i == len(row)-2:
				b.WriteString(c + pad + " | ")
			default:
				b.WriteString(pad + c + " | ")
			}
		}
		fmt.Fprintln(out, b.String())
	}
}

// printNotes writes what a row needs said beyond its cells.
func printNotes(out io.Writer, b *bench) {
	fmt.Fprintln(out, "notes:")
	for _, r := range b.rows {
		if r.note != "" {
			fmt.Fprintf(out, "  %-10s %s\n", r.name, r.note)
		}
		if r.run.lastErr != nil {
			fmt.Fprintf(out, "  %-10s a transport error: %v\n", r.name, r.run.lastErr)
		}
	}
	fmt.Fprintln(out, "  client CPU is this process's CPU time over wall time, in cores; latencies in ms, measured by the client.")
}

// printRSS writes each service's peak resident memory (VmHWM), read from /proc for the
// pids that scripts/suite.sh recorded.
func printRSS(out io.Writer, runDir string) {
	var parts []string
	for _, name := range []string{"stock-srv", "order-srv", "payment-srv", "stock-web", "order-web", "payment-web"} {
		parts = append(parts, fmt.Sprintf("%s %s", name, peakRSS(filepath.Join(runDir, name+".pid"))))
	}
	fmt.Fprintf(out, "peak RSS (VmHWM): %s\n", strings.Join(parts, ", "))
}

func peakRSS(pidFile string) string {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return "? (no pid file)"
	}
	f, err := os.Open(filepath.Join("/proc", strings.TrimSpace(string(b)), "status"))
	if err != nil {
		return "? (not running)"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb); err == nil {
				return fmt.Sprintf("%.0f MB", float64(kb)/1024)
			}
		}
	}
	return "?"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}
