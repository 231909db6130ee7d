package load

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// syntheticResult is a burst of 1,000 presses sent 2 ms apart over 2 s, each answered
// after 5 to 24 ms: the first 100 bought, one in 50 of the rest told busy, one in 100
// without an answer, the others sold out (873).
func syntheticResult() Result {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	res := Result{Commodity: 7, Start: t0, Elapsed: 2 * time.Second}
	for i := range 1000 {
		r := Reply{User: int64(i + 1), Sent: t0.Add(time.Duration(i) * 2 * time.Millisecond),
			Latency: time.Duration(5+i%20) * time.Millisecond}
		switch {
		case i < 100:
			r.Status, r.Reason = 200, "ok"
		case i%100 == 1:
			r.Reason, r.Err = "error", errors.New("connection reset")
		case i%50 == 0:
			r.Status, r.Reason = 503, "busy, try again"
		default:
			r.Status, r.Reason = 409, "sold out"
		}
		res.Replies = append(res.Replies, r)
	}
	return res
}

func TestWriteReport(t *testing.T) {
	res := syntheticResult()
	cfg := Config{Buyers: 1000, Units: 100}
	var buf bytes.Buffer
	if err := WriteReport(&buf, cfg, res); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkBalanced(t, page)
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	charts := map[string]*html.Node{}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "svg" {
			charts[attr(n, "data-chart")] = n
		}
		if n.Type == html.ElementNode && (n.Data == "script" || attr(n, "src") != "" || n.Data == "link") {
			t.Errorf("the page loads something (<%s src=%q>); want it self-contained", n.Data, attr(n, "src"))
		}
	}
	if len(charts) != 3 || charts["latency"] == nil || charts["histogram"] == nil || charts["outcomes"] == nil {
		t.Fatalf("charts %v, want latency, histogram and outcomes", keys(charts))
	}

	t.Run("latency", func(t *testing.T) {
		// Answers from 5 ms to 2.022 s (the last sent at 1.998 s, answered after 24 ms): 41
		// steps of 50 ms, each with answers, so three lines of 41 points, left to right, with
		// p50 <= p99 <= max at every step.
		lines := map[string][][2]float64{}
		for n := range charts["latency"].Descendants() {
			if n.Type == html.ElementNode && n.Data == "polyline" {
				lines[attr(n.Parent, "data-series")] = parsePoints(t, attr(n, "points"))
			}
		}
		if len(lines) != 3 {
			t.Fatalf("series %v, want p50, p99, max", keys(lines))
		}
		for name, pts := range lines {
			if len(pts) != 41 {
				t.Errorf("%s has %d points, want 41", name, len(pts))
			}
			for i := 1; i < len(pts); i++ {
				if pts[i][0] <= pts[i-1][0] {
					t.Errorf("%s: point %d at x %v is not right of point %d at %v", name, i, pts[i][0], i-1, pts[i-1][0])
				}
			}
		}
		for i := range lines["p50"] {
			// SVG y grows downwards.
			if p50, p99, top := lines["p50"][i][1], lines["p99"][i][1], lines["max"][i][1]; p50 < p99 || p99 < top {
				t.Errorf("step %d: y of p50 %v, p99 %v, max %v: want p50 <= p99 <= max", i, p50, p99, top)
			}
		}
		if got := text(charts["latency"]); !strings.Contains(got, "latency (ms)") || !strings.Contains(got, "time since the release (s)") {
			t.Errorf("latency chart's text %q lacks its axis labels", got)
		}
	})

	t.Run("histogram", func(t *testing.T) {
		// Latencies of 5 to 24 ms, every whole ms, under 20 times apart: a linear scale,
		// bins of 0.5 ms from 5 ms, so 20 bars (every other bin), holding every answer.
		bars, total := countBars(charts["histogram"])
		if len(bars) != 20 || total != 1000 {
			t.Errorf("%d bars holding %d answers, want 20 holding 1000", len(bars), total)
		}
		if got := text(charts["histogram"]); !strings.Contains(got, "latency (ms)") || strings.Contains(got, "log scale") {
			t.Errorf("histogram's text %q: want a linear latency axis", got)
		}
		marks := 0
		for n := range charts["histogram"].Descendants() {
			if n.Type == html.ElementNode && attr(n, "data-mark") != "" {
				marks++
			}
		}
		if marks != 2 {
			t.Errorf("%d marks, want p50 and p99", marks)
		}
	})

	t.Run("outcomes", func(t *testing.T) {
		_, total := countBars(charts["outcomes"])
		byReason := map[string]int{}
		for n := range charts["outcomes"].Descendants() {
			if n.Type == html.ElementNode && n.Data == "rect" {
				c, _ := strconv.Atoi(attr(n, "data-count"))
				byReason[attr(n, "data-reason")] += c
			}
		}
		want := res.Counts()
		if total != 1000 || len(byReason) != len(want) {
			t.Errorf("bars hold %d answers of reasons %v, want 1000 of %v", total, byReason, want)
		}
		for r, n := range want {
			if byReason[r] != n {
				t.Errorf("bars hold %d %q, want %d", byReason[r], r, n)
			}
		}
	})

	t.Run("figures", func(t *testing.T) {
		body := text(doc)
		for _, want := range []string{"commodity 7", "presses1,000", "units100", "duration2.00s", "rate500 /s",
			"latency p50" + shortDuration(res.Percentile(50)), "latency p99" + shortDuration(res.Percentile(99)),
			"latency max24ms", "sold out873", "ok100", "busy, try again18", "error9"} {
			if !strings.Contains(body, want) {
				t.Errorf("the page's text lacks %q:\n%s", want, body)
			}
		}
	})
}

// Latencies from 1 ms to 1 s go on a log scale: bins of a tenth of a power of ten, so
// four bars of ten, on an axis labelled at 1, 2 and 5 times each power of ten.
func TestWriteReportLogHistogram(t *testing.T) {
	res := Result{Commodity: 1, Elapsed: 2 * time.Second}
	for _, l := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		for range 10 {
			res.Replies = append(res.Replies, Reply{Status: 200, Reason: "ok", Latency: l})
		}
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, Config{Buyers: 40, Units: 40}, res); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || attr(n, "data-chart") != "histogram" {
			continue
		}
		bars, total := countBars(n)
		if len(bars) != 4 || total != 40 {
			t.Errorf("%d bars holding %d answers, want 4 holding 40", len(bars), total)
		}
		for _, c := range bars {
			if attr(c, "data-count") != "10" {
				t.Errorf("a bar holds %s answers, want 10", attr(c, "data-count"))
			}
		}
		// The x ticks, run together: 1, 2, 5, 10, ... 1000 ms.
		got := text(n)
		for _, want := range []string{"latency (ms, log scale)", "1251020501002005001000"} {
			if !strings.Contains(got, want) {
				t.Errorf("histogram's text %q lacks %q", got, want)
			}
		}
		return
	}
	t.Fatal("no histogram")
}

// An empty result still makes a page with its three charts, and no NaN anywhere.
func TestWriteReportNoReplies(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReport(&buf, Config{Buyers: 10, Units: 1}, Result{Commodity: 1}); err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, buf.String())
	if n := strings.Count(buf.String(), "<svg "); n != 3 {
		t.Errorf("%d charts, want 3", n)
	}
	if strings.Contains(buf.String(), "NaN") || strings.Contains(buf.String(), "Inf") {
		t.Errorf("the page holds NaN or Inf:\n%s", buf.String())
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{
		{0.04, 0.05}, {0.05, 0.05}, {0.051, 0.1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {120, 200}, {0, 1},
	} {
		if got := niceStep(tc.x); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

// checkBalanced fails unless every element the page opens it also closes, in order
// (void elements and self-closed SVG ones apart).
func checkBalanced(t *testing.T, page string) {
	t.Helper()
	void := map[string]bool{"meta": true, "br": true, "img": true, "input": true, "link": true, "hr": true}
	var open []string
	z := html.NewTokenizer(strings.NewReader(page))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("tokenising the page: %v", z.Err())
			}
			if len(open) > 0 {
				t.Fatalf("elements never closed: %v", open)
			}
			return
		case html.StartTagToken:
			if name, _ := z.TagName(); !void[string(name)] {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, open)
			}
			open = open[:len(open)-1]
		}
	}
}

func countBars(svg *html.Node) (bars []*html.Node, total int) {
	for n := range svg.Descendants() {
		if n.Type == html.ElementNode && n.Data == "rect" {
			c, _ := strconv.Atoi(attr(n, "data-count"))
			bars, total = append(bars, n), total+c
		}
	}
	return bars, total
}

func parsePoints(t *testing.T, s string) [][2]float64 {
	t.Helper()
	var out [][2]float64
	for _, p := range strings.Fields(s) {
		x, y, ok := strings.Cut(p, ",")
		fx, err1 := strconv.ParseFloat(x, 64)
		fy, err2 := strconv.ParseFloat(y, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("point %q of %q is not x,y", p, s)
		}
		out = append(out, [2]float64{fx, fy})
	}
	return out
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text is the text of n's descendants, run together without spaces, outside <style>.
func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode && d.Parent.Data != "style" && d.Parent.Data != "title" {
			b.WriteString(strings.TrimSpace(d.Data))
		}
	}
	return b.String()
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
