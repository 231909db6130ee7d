package load

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed report.html
var reportHTML string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{"n": num}).Parse(reportHTML))

// WriteReport writes a burst's report to w as one HTML page that needs nothing from the
// network: the run's figures and outcomes, then three charts drawn as inline SVG: latency
// over the run (p50, p99 and max of the answers in each time step), a latency histogram,
// and the answers of each time step stacked by what they said. Time is when each answer
// came, from the release; cfg says what was run (buyers, units, connections).
func WriteReport(w io.Writer, cfg Config, res Result) error {
	return reportTmpl.Execute(w, newReport(cfg, res))
}

// report is what the page shows.
type report struct {
	Title    string
	Figures  []figure
	Outcomes []outcomeRow
	Charts   []chart
}

type figure struct{ Name, Value string }

type outcomeRow struct{ Reason, Color, Count, Share string }

// chart is one SVG chart: its plot area, axes, and lines or bars, all in SVG units.
type chart struct {
	ID, Title, Note, XLabel, YLabel string
	W, H                            float64
	Left, Top, Right, Bottom        float64 // the plot area's edges
	TickEnd, MidX, MidY             float64 // the x ticks' lower end; the plot's middle
	XTicks, YTicks                  []tick
	Lines                           []series
	Bars                            []bar
	Marks                           []mark
	Legend                          []swatch
}

type tick struct {
	At    float64
	Label string
}

// series is a line through Points (SVG "x,y x,y ..."); Dots are the same points.
type series struct {
	Name, Color, Points string
	Dots                []point
}

type point struct{ X, Y float64 }

type bar struct {
	X, Y, W, H           float64
	Color, Title, Reason string // Reason: of an outcomes bar
	Count                int
}

// mark is a labelled vertical line at X, its label on the side with more room.
type mark struct {
	X, DX                float64
	Label, Color, Anchor string
}

type swatch struct{ Name, Color string }

// Chart geometry, in SVG units (pixels at 100 %).
const (
	chartW, chartH             = 1060.0, 330.0
	padL, padR, padT, padB     = 72.0, 20.0, 14.0, 46.0
	timeSteps                  = 100 // at most this many time steps across a run (at least 40)
	colorP50, colorP99, colorX = "#1565c0", "#e65100", "#9e9e9e"
	colorHist                  = "#90caf9"
)

// answer is one reply placed in time: when it came, from the release, and its latency.
type answer struct {
	at, latency time.Duration
	reason      string
}

func newReport(cfg Config, res Result) report {
	answers := make([]answer, len(res.Replies))
	span := res.Elapsed
	for i, r := range res.Replies {
		at := r.Latency // released with the rest, if its send time is not known
		if !r.Sent.IsZero() && !res.Start.IsZero() {
			at = max(r.Sent.Sub(res.Start), 0) + r.Latency
		}
		answers[i] = answer{at: at, latency: r.Latency, reason: r.Reason}
		span = max(span, at)
	}
	reasons, colors := reasonOrder(res.Counts())
	rp := report{Title: fmt.Sprintf("secbuy load test: commodity %d", res.Commodity)}
	rp.Figures = figures(cfg, res)
	for _, r := range reasons {
		n := res.Counts()[r]
		rp.Outcomes = append(rp.Outcomes, outcomeRow{Reason: r, Color: colors[r], Count: thousands(int64(n)),
			Share: strconv.FormatFloat(100*float64(n)/float64(len(res.Replies)), 'f', 1, 64) + " %"})
	}
	step := time.Duration(niceStep(span.Seconds()/timeSteps) * float64(time.Second))
	step = max(step, time.Millisecond)
	steps := max(int((span+step-1)/step), 1)
	byStep := make([][]answer, steps)
	for _, a := range answers {
		i := min(int(a.at/step), steps-1)
		byStep[i] = append(byStep[i], a)
	}
	rp.Charts = []chart{
		latencyChart(byStep, step),
		histogramChart(answers, res),
		outcomesChart(byStep, step, reasons, colors),
	}
	return rp
}

// figures are the run's summary figures.
func figures(cfg Config, res Result) []figure {
	n := len(res.Replies)
	buyers := thousands(int64(cfg.Buyers))
	if cfg.Twice > 0 {
		buyers += fmt.Sprintf(" (%d pressing twice)", min(cfg.Twice, cfg.Buyers))
	}
	units := thousands(cfg.Units)
	if cfg.Commodity != 0 {
		units = "an existing commodity's"
	}
	conns := "one each, all at once"
	if cfg.Conns > 0 {
		conns = strconv.Itoa(cfg.Conns)
	}
	rate := "-"
	if res.Elapsed > 0 {
		rate = thousands(int64(float64(n)/res.Elapsed.Seconds()+0.5)) + " /s"
	}
	latency := func(p float64) string {
		if n == 0 {
			return "-"
		}
		return shortDuration(res.Percentile(p))
	}
	fs := []figure{
		{"buyers", buyers},
		{"presses", thousands(int64(n))},
		{"units", units},
		{"connections", conns},
		{"duration", shortDuration(res.Elapsed)},
		{"rate", rate},
		{"latency p50", latency(50)},
		{"latency p99", latency(99)},
		{"latency max", latency(100)},
	}
	if !res.Start.IsZero() {
		fs = append(fs, figure{"released at", res.Start.Format("2006-01-02 15:04:05 MST")})
	}
	return fs
}

// reasonOrder orders the reasons of counts ("ok" first, then the most frequent) and gives
// each its colour: fixed ones for the outcomes every run has, a palette for the rest.
func reasonOrder(counts map[string]int) ([]string, map[string]string) {
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		switch {
		case a == "ok":
			return -1
		case b == "ok":
			return 1
		case counts[a] != counts[b]:
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	fixed := map[string]string{"ok": "#2e7d32", "pending": "#f9a825", "sold out": "#90a4ae",
		"busy, try again": "#ef6c00", "slow down": "#8e24aa", "error": "#c62828"}
	palette := []string{"#1e88e5", "#6d4c41", "#00897b", "#d81b60", "#5e35b1", "#7cb342"}
	colors := map[string]string{}
	for _, r := range reasons {
		if c, ok := fixed[r]; ok {
			colors[r] = c
			continue
		}
		colors[r] = palette[0]
		palette = append(palette[1:], palette[0])
	}
	return reasons, colors
}

// newChart is an empty chart with its plot area.
func newChart(id, title, note, xLabel, yLabel string) chart {
	return chart{ID: id, Title: title, Note: note, XLabel: xLabel, YLabel: yLabel, W: chartW, H: chartH,
		Left: padL, Top: padT, Right: chartW - padR, Bottom: chartH - padB,
		TickEnd: chartH - padB + 5, MidX: (padL + chartW - padR) / 2, MidY: (padT + chartH - padB) / 2}
}

// x maps f of [0, hi] across the plot; y maps f of [0, hi] up it.
func (c chart) x(f, hi float64) float64 { return c.Left + (c.Right-c.Left)*f/hi }
func (c chart) y(f, hi float64) float64 { return c.Bottom - (c.Bottom-c.Top)*f/hi }

// timeAxis gives c its x axis: the run's time steps, in seconds.
func (c *chart) timeAxis(steps int, step time.Duration) float64 {
	hi := float64(steps) * step.Seconds()
	st := niceStep(hi / 10)
	for i := 0; float64(i)*st <= hi*(1+1e-9); i++ {
		v := float64(i) * st
		c.XTicks = append(c.XTicks, tick{c.x(v, hi), axisLabel(v, st)})
	}
	return hi
}

// valueAxis gives c a linear y axis from 0 over hi (rounded up to a tick), with ticks at
// least minStep apart, and returns the axis's top.
func (c *chart) valueAxis(hi, minStep float64) float64 {
	if hi <= 0 {
		hi = max(minStep, 1)
	}
	st := max(niceStep(hi/5), minStep)
	top := math.Ceil(hi/st-1e-9) * st
	for i := 0; float64(i)*st <= top*(1+1e-9); i++ {
		v := float64(i) * st
		c.YTicks = append(c.YTicks, tick{c.y(v, top), axisLabel(v, st)})
	}
	return top
}

// latencyChart draws the p50, p99 and max latency of each time step that had answers.
func latencyChart(byStep [][]answer, step time.Duration) chart {
	c := newChart("latency", "Latency over the run",
		fmt.Sprintf("the answers of each %s step, by when they came", shortDuration(step)),
		"time since the release (s)", "latency (ms)")
	type stat struct {
		at            float64 // the step's middle, s
		p50, p99, top float64 // ms
	}
	var stats []stat
	var hi float64
	for i, as := range byStep {
		if len(as) == 0 {
			continue
		}
		ls := make([]time.Duration, len(as))
		for j, a := range as {
			ls[j] = a.latency
		}
		slices.Sort(ls)
		at := func(p float64) float64 { return ms(ls[int(float64(len(ls)-1)*p/100)]) }
		s := stat{(float64(i) + 0.5) * step.Seconds(), at(50), at(99), at(100)}
		stats = append(stats, s)
		hi = max(hi, s.top)
	}
	xHi := c.timeAxis(len(byStep), step)
	yHi := c.valueAxis(hi, 0)
	for _, s := range []struct {
		name, color string
		of          func(stat) float64
	}{
		{"max", colorX, func(s stat) float64 { return s.top }},
		{"p99", colorP99, func(s stat) float64 { return s.p99 }},
		{"p50", colorP50, func(s stat) float64 { return s.p50 }},
	} {
		l := series{Name: s.name, Color: s.color}
		var pts []string
		for _, st := range stats {
			p := point{c.x(st.at, xHi), c.y(s.of(st), yHi)}
			l.Dots = append(l.Dots, p)
			pts = append(pts, num(p.X)+","+num(p.Y))
		}
		l.Points = strings.Join(pts, " ")
		c.Lines = append(c.Lines, l)
	}
	c.Legend = []swatch{{"p50", colorP50}, {"p99", colorP99}, {"max", colorX}}
	return c
}

// histogramChart counts the latencies in bins of equal width on a latencyScale, with the
// run's p50 and p99 marked.
func histogramChart(answers []answer, res Result) chart {
	c := newChart("histogram", "Latency histogram", "", "", "answers")
	if len(answers) == 0 {
		c.XLabel = "latency (ms)"
		c.valueAxis(0, 1)
		return c
	}
	lo, hi := math.Inf(1), 0.0
	for _, a := range answers {
		lo, hi = min(lo, ms(a.latency)), max(hi, ms(a.latency))
	}
	sc := newLatencyScale(lo, hi)
	c.XLabel, c.Note = "latency (ms)", "answers by latency, in bins of "+axisLabel(sc.w, sc.w)+" ms"
	if sc.log {
		c.XLabel = "latency (ms, log scale)"
		c.Note = fmt.Sprintf("answers by latency, in %.0f bins to each power of ten", 1/sc.w)
	}
	x := func(v float64) float64 { return c.x(sc.pos(v)-sc.lo, float64(sc.bins)*sc.w) }
	for _, v := range sc.ticks() {
		c.XTicks = append(c.XTicks, tick{x(v), axisLabel(v, v)})
	}
	counts := make([]int, sc.bins)
	for _, a := range answers {
		counts[sc.bin(ms(a.latency))]++
	}
	yHi := c.valueAxis(float64(slices.Max(counts)), 1)
	for i, n := range counts {
		if n == 0 {
			continue
		}
		from, to := sc.edge(i), sc.edge(i+1)
		x0, x1, y := x(from), x(to), c.y(float64(n), yHi)
		c.Bars = append(c.Bars, bar{X: x0 + 0.5, Y: y, W: max(x1-x0-1, 1), H: c.Bottom - y, Color: colorHist, Count: n,
			Title: fmt.Sprintf("%s to %s ms: %d answers", axisLabel(from, (to-from)/10), axisLabel(to, (to-from)/10), n)})
	}
	for _, m := range []struct {
		name, color string
		d           time.Duration
	}{{"p50", colorP50, res.Percentile(50)}, {"p99", colorP99, res.Percentile(99)}} {
		mk := mark{X: x(ms(m.d)), DX: 5, Label: m.name + " " + shortDuration(m.d), Color: m.color, Anchor: "start"}
		if mk.X > c.MidX {
			mk.DX, mk.Anchor = -5, "end"
		}
		c.Marks = append(c.Marks, mk)
	}
	c.Legend = []swatch{{"answers", colorHist}, {"p50", colorP50}, {"p99", colorP99}}
	return c
}

// latencyScale places latencies (ms) along the histogram's x axis in bins of equal width:
// a linear scale when the slowest is under logSpread times the fastest, else a log scale
// (positions in log10 ms), where a bin is a tenth of a power of ten.
type latencyScale struct {
	log  bool
	lo   float64 // the first bin's start, as a position
	w    float64 // every bin's width, as a position
	bins int
}

const (
	logSpread    = 20
	linearBins   = 40    // about this many bins on a linear scale
	latencyFloor = 0.001 // ms: where a latency of 0 goes on a log scale
)

func newLatencyScale(lo, hi float64) latencyScale {
	sc := latencyScale{log: hi >= logSpread*max(lo, latencyFloor)}
	if sc.log {
		sc.w = 0.1
	} else {
		sc.w = niceStep(max(hi-lo, hi/10, latencyFloor) / linearBins)
	}
	sc.lo = math.Floor(sc.pos(lo)/sc.w+1e-9) * sc.w
	sc.bins = int(math.Floor((sc.pos(hi)-sc.lo)/sc.w+1e-9)) + 1
	return sc
}

// pos is v's position on the scale.
func (sc latencyScale) pos(v float64) float64 {
	if sc.log {
		return math.Log10(max(v, latencyFloor))
	}
	return v
}

// bin is the bin v falls in.
func (sc latencyScale) bin(v float64) int {
	return min(max(int(math.Floor((sc.pos(v)-sc.lo)/sc.w+1e-9)), 0), sc.bins-1)
}

// edge is the latency where bin i starts.
func (sc latencyScale) edge(i int) float64 {
	p := sc.lo + float64(i)*sc.w
	if sc.log {
		return math.Pow(10, p)
	}
	return p
}

// ticks are the latencies to label along the scale.
func (sc latencyScale) ticks() []float64 {
	lo, hi := sc.edge(0), sc.edge(sc.bins)
	if sc.log {
		return logTicks(lo, hi)
	}
	st := niceStep((hi - lo) / 10)
	var out []float64
	for i := math.Ceil(lo/st - 1e-9); i*st <= hi*(1+1e-9); i++ {
		out = append(out, i*st)
	}
	return out
}

// outcomesChart stacks the answers of each time step by reason, in the order of reasons.
func outcomesChart(byStep [][]answer, step time.Duration, reasons []string, colors map[string]string) chart {
	c := newChart("outcomes", "Outcomes over the run",
		fmt.Sprintf("answers in each %s step, by what they said", shortDuration(step)),
		"time since the release (s)", "answers per step")
	xHi := c.timeAxis(len(byStep), step)
	per := make([]map[string]int, len(byStep))
	most := 0
	for i, as := range byStep {
		per[i] = map[string]int{}
		for _, a := range as {
			per[i][a.reason]++
		}
		most = max(most, len(as))
	}
	yHi := c.valueAxis(float64(most), 1)
	for i, counts := range per {
		x0, x1 := c.x(float64(i)*step.Seconds(), xHi), c.x(float64(i+1)*step.Seconds(), xHi)
		below := 0
		for _, r := range reasons {
			n := counts[r]
			if n == 0 {
				continue
			}
			yTop, yBase := c.y(float64(below+n), yHi), c.y(float64(below), yHi)
			c.Bars = append(c.Bars, bar{X: x0 + 0.5, Y: yTop, W: max(x1-x0-1, 1), H: yBase - yTop, Color: colors[r], Count: n, Reason: r,
				Title: fmt.Sprintf("%s to %s s: %s %d", axisLabel(float64(i)*step.Seconds(), step.Seconds()),
					axisLabel(float64(i+1)*step.Seconds(), step.Seconds()), r, n)})
			below += n
		}
	}
	for _, r := range reasons {
		c.Legend = append(c.Legend, swatch{r, colors[r]})
	}
	return c
}

// niceStep is the least of 1, 2 or 5 times a power of ten that is at least x (x > 0).
func niceStep(x float64) float64 {
	if x <= 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// logTicks are the values 1, 2 and 5 times a power of ten in [lo, hi], or every digit
// times a power of ten when that gives fewer than three.
func logTicks(lo, hi float64) []float64 {
	pick := func(ms []float64) []float64 {
		var out []float64
		for p := math.Pow(10, math.Floor(math.Log10(lo))); p <= hi; p *= 10 {
			for _, m := range ms {
				if v := m * p; v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
					out = append(out, v)
				}
			}
		}
		return out
	}
	if t := pick([]float64{1, 2, 5}); len(t) >= 3 {
		return t
	}
	return pick([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9})
}

// axisLabel formats v with as many decimals as a step of st needs.
func axisLabel(v, st float64) string {
	d := 0
	if st > 0 {
		d = max(0, int(-math.Floor(math.Log10(st)+1e-9)))
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}

// num formats an SVG coordinate to a tenth.
func num(f float64) string { return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
