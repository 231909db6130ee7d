package load

import (
	"fmt"
	"math/bits"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Outcome is what a press was told, in the few kinds the progress line counts.
type Outcome uint8

// The outcomes, in the order the progress line names them.
const (
	OutcomeOK      Outcome = iota // 200: bought
	OutcomePending                // 202: accepted, the order is still being made
	OutcomeSoldOut                // refused: sold out
	OutcomeBusy                   // 503 busy or 429 slow down: the buyer sends it again
	OutcomeOther                  // any other refusal, or no answer at all
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"ok", "pending", "sold out", "busy", "other"}

// String is the outcome's name on the progress line.
func (o Outcome) String() string {
	if o >= NumOutcomes {
		return "outcome " + strconv.Itoa(int(o))
	}
	return outcomeNames[o]
}

// Outcome sorts the reply into the progress line's kinds.
func (r Reply) Outcome() Outcome {
	switch {
	case r.Err != nil:
		return OutcomeOther
	case r.Status == http.StatusOK:
		return OutcomeOK
	case r.Status == http.StatusAccepted:
		return OutcomePending
	case r.Reason == "sold out":
		return OutcomeSoldOut
	case r.Status == http.StatusServiceUnavailable || r.Status == http.StatusTooManyRequests:
		return OutcomeBusy
	}
	return OutcomeOther
}

// latencyBuckets is the size of a Tally's latency histogram: 0 to 7 µs one bucket each,
// then eight buckets per power of two up to 2^41 µs, so a bucket's top is at most 1/8
// above any latency in it.
const latencyBuckets = 8 + 8*38

// latencyBucket is the bucket of d.
func latencyBucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 8 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // 2^e <= us < 2^(e+1), e >= 3
	return min((e-2)*8+int(us>>(e-3)&7), latencyBuckets-1)
}

// latencyTop is the least latency above every latency of bucket i.
func latencyTop(i int) time.Duration {
	if i < 8 {
		return time.Duration(i+1) * time.Microsecond
	}
	e, m := i/8+2, i%8
	return time.Duration(uint64(9+m)<<(e-3)) * time.Microsecond
}

// Tally counts a run's presses as they are sent and answered, for the progress line. It
// uses atomics only, so counting costs a press a few adds and never waits on a lock. Its
// methods do nothing on a nil *Tally, which is what ShowProgress returns when the line is
// off.
type Tally struct {
	sent     atomic.Int64
	outcomes [NumOutcomes]atomic.Int64
	latency  [latencyBuckets]atomic.Int64
}

// Sent counts a press sent.
func (t *Tally) Sent() {
	if t != nil {
		t.sent.Add(1)
	}
}

// Answered counts a press answered with o after latency.
func (t *Tally) Answered(o Outcome, latency time.Duration) {
	if t == nil {
		return
	}
	t.outcomes[min(o, OutcomeOther)].Add(1)
	t.latency[latencyBucket(latency)].Add(1)
}

// Counts is a Tally read at one moment (each counter atomically, not all of them at once).
type Counts struct {
	Sent      int64
	ByOutcome [NumOutcomes]int64
	// P99 is the 99th percentile latency of the answers so far (0: none yet), rounded up
	// to its histogram bucket's top: at most 1/8 (or 1 µs) above the true figure.
	P99 time.Duration
}

// Answered is how many presses have been answered.
func (c Counts) Answered() int64 {
	var n int64
	for _, v := range c.ByOutcome {
		n += v
	}
	return n
}

// Counts reads the tally.
func (t *Tally) Counts() Counts {
	var c Counts
	if t == nil {
		return c
	}
	c.Sent = t.sent.Load()
	for i := range c.ByOutcome {
		c.ByOutcome[i] = t.outcomes[i].Load()
	}
	var hist [latencyBuckets]int64
	var n int64
	for i := range hist {
		hist[i] = t.latency[i].Load()
		n += hist[i]
	}
	if n == 0 {
		return c
	}
	// The same rank as Result.Percentile: the element at (n-1)*0.99, counting from 0.
	rank := int64(float64(n-1) * 0.99)
	var seen int64
	for i, k := range hist {
		if seen += k; seen > rank {
			c.P99 = latencyTop(i)
			break
		}
	}
	return c
}

// ProgressLine is the live line of a run: label, presses sent (of total, if total is not
// 0), the rate of answers so far and their p99 latency so far, then what the answered
// ones were told (ok and sold out always, the other outcomes once one has been seen), e.g.
//
//	burst  sent 18,432/20,000 · 9,210/s · p99 31ms · ok 1,000 · sold out 17,400 · busy 12
func ProgressLine(label string, c Counts, total int64, elapsed time.Duration) string {
	var b strings.Builder
	if label != "" {
		b.WriteString(label + "  ")
	}
	b.WriteString("sent " + thousands(c.Sent))
	if total > 0 {
		b.WriteString("/" + thousands(total))
	}
	rate := "-"
	if elapsed > 0 {
		rate = thousands(int64(float64(c.Answered())/elapsed.Seconds() + 0.5))
	}
	p99 := "-"
	if c.P99 > 0 {
		p99 = shortDuration(c.P99)
	}
	fmt.Fprintf(&b, " · %s/s · p99 %s", rate, p99)
	for o, n := range c.ByOutcome {
		if n > 0 || Outcome(o) == OutcomeOK || Outcome(o) == OutcomeSoldOut {
			fmt.Fprintf(&b, " · %s %s", Outcome(o), thousands(n))
		}
	}
	return b.String()
}

// thousands formats n with a comma between each group of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// shortDuration formats d with two or three significant digits: 850µs, 3.2ms, 31ms, 1.25s.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(int64(d/time.Microsecond), 10) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	case d < time.Second:
		return strconv.FormatInt(int64((d+time.Millisecond/2)/time.Millisecond), 10) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// progressEvery is how often the progress line is drawn: often enough to watch, seldom
// enough to cost the run nothing.
const progressEvery = 250 * time.Millisecond

// ShowProgress draws a run's live progress line (ProgressLine and a bar) on out, redrawn
// every progressEvery from a Tally, if out is a terminal; into a file or a pipe it draws
// nothing. total is the run's presses (0: not known), d its length if it is timed (0:
// not); the bar fills with the time of a timed run, else with the presses answered.
//
// It returns the Tally to count the run in (nil, which counts nothing, when the line is
// off) and stop, which ends the drawing and clears the line, so that what is printed next
// starts on a clean line. Call stop once the run is over.
func ShowProgress(out *os.File, label string, total int64, d time.Duration) (*Tally, func()) {
	if out == nil || !term.IsTerminal(int(out.Fd())) {
		return nil, func() {}
	}
	t := &Tally{}
	barMax := total
	if d > 0 {
		barMax = d.Milliseconds()
	}
	if barMax <= 0 {
		barMax = -1 // a spinner
	}
	bar := progressbar.NewOptions64(barMax,
		progressbar.OptionSetWriter(out),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSetWidth(12),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),       // its guess swings wildly while a crowd waits
		progressbar.OptionSetSpinnerChangeInterval(0), // no drawing of its own, only ours
	)
	start := time.Now()
	draw := func() {
		el := time.Since(start)
		c := t.Counts()
		n := c.Answered()
		if d > 0 {
			n = el.Milliseconds()
		}
		if barMax > 0 {
			// A full bar is a finished one, which draws no more: full only once cleared.
			n = min(n, barMax-1)
		}
		line := ProgressLine(label, c, total, el)
		if w, _, err := term.GetSize(int(out.Fd())); err == nil && w > 0 {
			// Room for the percentage, a short bar and the time (the bar shrinks to fit);
			// a narrow terminal loses the rarer outcomes, last on the line, first.
			line = truncate(line, w-20)
		}
		// Set64 draws only when the percentage moves, Describe always: one line a tick,
		// or two at once when the bar moves, the second the one that stays.
		_ = bar.Set64(n)
		bar.Describe(line)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		for {
			draw()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	return t, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			_ = bar.Clear()
		})
	}
}

// truncate cuts s to at most n runes, marking a cut with "…".
func truncate(s string, n int) string {
	if n <= 1 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
