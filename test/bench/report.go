package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// serviceNames are the six services, whose peak memory and profiles the bench reports.
var serviceNames = []string{"stock-srv", "order-srv", "payment-srv", "stock-web", "order-web", "payment-web"}

// printTable writes the one table of the run. Numbers are right-aligned; the last two
// columns (answers other than success, invariants) are text. Each rate is over hello's,
// each capacity over hello's capacity.
func printTable(out io.Writer, rows []row, hello baseline) {
	cells := [][]string{{"scenario", "requests", "req/s", "x hello", "p50 ms", "p99 ms", "max ms",
		"capacity/s", "x hello", "successes", "durable orders/s", "errors", "client CPU", "other answers", "invariants"}}
	for _, r := range rows {
		if r.err != nil && len(r.run.samples) == 0 {
			cells = append(cells, []string{r.name, "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "COULD NOT RUN: " + r.err.Error()})
			continue
		}
		st := r.stats
		capacity, capRatio, durable := "-", "-", "-"
		if r.capacity > 0 {
			capacity, capRatio = fmt.Sprintf("%.0f", r.capacity), ratio(r.capacity, hello.capacity)
		}
		if r.durable > 0 {
			durable = fmt.Sprintf("%.0f", r.durable)
		}
		cells = append(cells, []string{r.name, strconv.Itoa(st.requests), fmt.Sprintf("%.0f", st.rate), ratio(st.rate, hello.rate),
			ms(st.p50), ms(st.p99), ms(st.max), capacity, capRatio, strconv.Itoa(st.ok), durable, strconv.Itoa(st.errors),
			fmt.Sprintf("%.2f", r.run.cpu), st.otherString(), r.verdict()})
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

// verdict is what the invariants column says of r.
func (r row) verdict() string {
	switch {
	case r.err != nil:
		return "COULD NOT CHECK: " + r.err.Error()
	case len(r.violations) > 0:
		return "BROKEN: " + strings.Join(r.violations, "; ")
	case r.checked:
		return "OK"
	}
	return "-"
}

func ratio(rate, hello float64) string {
	if hello <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", rate/hello)
}

// jsonRow is one scenario in the -json file.
type jsonRow struct {
	Name         string  `json:"name"`
	Rate         float64 `json:"rate"`
	Ratio        float64 `json:"ratio"`
	P50          float64 `json:"p50_ms"`
	P99          float64 `json:"p99_ms"`
	Max          float64 `json:"max_ms"`
	Capacity     float64 `json:"capacity_rps"`
	CapRatio     float64 `json:"capacity_ratio"`
	Durable      float64 `json:"durable_per_s"`
	Errors       int     `json:"errors"`
	InvariantsOK bool    `json:"invariants_ok"`
}

// writeJSON writes the rows to file as a JSON array, one object per scenario; ratio is to
// hello's rate and capacity_ratio to hello's capacity (0 when not measured).
func writeJSON(file string, rows []row, hello baseline) error {
	out := make([]jsonRow, 0, len(rows))
	for _, r := range rows {
		st := r.stats
		j := jsonRow{Name: r.name, Rate: round(st.rate), P50: msf(st.p50), P99: msf(st.p99), Max: msf(st.max),
			Capacity: round(r.capacity), Durable: round(r.durable), Errors: st.errors,
			InvariantsOK: r.err == nil && len(r.violations) == 0 && r.checked}
		if hello.rate > 0 {
			j.Ratio = math.Round(st.rate/hello.rate*1000) / 1000
		}
		if hello.capacity > 0 {
			j.CapRatio = math.Round(r.capacity/hello.capacity*1000) / 1000
		}
		out = append(out, j)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

func round(f float64) float64 { return math.Round(f) }

func msf(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }

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
	fmt.Fprintln(out, "  x hello: the rate over the hello baseline's, the capacity over hello's capacity; capacity: the highest open-loop rate at which p99 <= 100 ms and no request failed or got a 5xx")
	fmt.Fprintln(out, "  client CPU is this process's CPU time over wall time, in cores; latencies in ms, measured by the client (open loop: from when each request was due).")
}

// printRSS writes each service's peak resident memory (VmHWM), read from /proc for the
// pids that scripts/suite.sh recorded.
func rssLine(runDir string) string {
	var parts []string
	for _, name := range serviceNames {
		parts = append(parts, fmt.Sprintf("%s %s", name, peakRSS(filepath.Join(runDir, name+".pid"))))
	}
	return fmt.Sprintf("peak RSS (VmHWM) of the one-instance suite: %s\n", strings.Join(parts, ", "))
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
