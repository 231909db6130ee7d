package load

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	counts := func(sent int64, byOutcome map[Outcome]int64, p99 time.Duration) Counts {
		c := Counts{Sent: sent, P99: p99}
		for o, n := range byOutcome {
			c.ByOutcome[o] = n
		}
		return c
	}
	tests := []struct {
		name    string
		label   string
		c       Counts
		total   int64
		elapsed time.Duration
		want    string
	}{
		{"nothing answered yet", "", counts(0, nil, 0), 500, 0,
			"sent 0/500 · -/s · p99 - · ok 0 · sold out 0"},
		{"the total not known", "soldout", counts(1234567, map[Outcome]int64{OutcomeSoldOut: 1234500}, 850*time.Microsecond), 0, 10 * time.Second,
			"soldout  sent 1,234,567 · 123,450/s · p99 850µs · ok 0 · sold out 1,234,500"},
		{"every outcome seen", "burst", counts(18432, map[Outcome]int64{OutcomeOK: 1000, OutcomePending: 3, OutcomeSoldOut: 17400, OutcomeBusy: 12, OutcomeOther: 5}, 31*time.Millisecond), 20000, 2 * time.Second,
			"burst  sent 18,432/20,000 · 9,210/s · p99 31ms · ok 1,000 · pending 3 · sold out 17,400 · busy 12 · other 5"},
		{"a slow p99 in seconds", "", counts(10, map[Outcome]int64{OutcomeOK: 10}, 1250*time.Millisecond), 10, 4 * time.Second,
			"sent 10/10 · 3/s · p99 1.25s · ok 10 · sold out 0"},
		{"a p99 under 10 ms has a decimal", "", counts(2, map[Outcome]int64{OutcomeBusy: 2}, 3240*time.Microsecond), 0, time.Second,
			"sent 2 · 2/s · p99 3.2ms · ok 0 · sold out 0 · busy 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ProgressLine(tc.label, tc.c, tc.total, tc.elapsed); got != tc.want {
				t.Errorf("ProgressLine:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestTallyCounts(t *testing.T) {
	var tally Tally
	// 1,000 answers of 1 ms to 1,000 ms, from 8 goroutines at once; the p99 of these is 991 ms.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 1000; i += 8 {
				tally.Sent()
				o := OutcomeSoldOut
				if i < 10 {
					o = OutcomeOK
				}
				tally.Answered(o, time.Duration(i+1)*time.Millisecond)
			}
		})
	}
	wg.Wait()
	tally.Sent() // one still in flight
	c := tally.Counts()
	if c.Sent != 1001 || c.Answered() != 1000 || c.ByOutcome[OutcomeOK] != 10 || c.ByOutcome[OutcomeSoldOut] != 990 {
		t.Errorf("counts: sent %d, answered %d, ok %d, sold out %d; want 1001, 1000, 10, 990",
			c.Sent, c.Answered(), c.ByOutcome[OutcomeOK], c.ByOutcome[OutcomeSoldOut])
	}
	exact := 991 * time.Millisecond
	if c.P99 < exact || c.P99 > exact+exact/8 {
		t.Errorf("P99 = %v, want within [%v, %v]", c.P99, exact, exact+exact/8)
	}
}

func TestNilTallyCountsNothing(t *testing.T) {
	var tally *Tally
	tally.Sent()
	tally.Answered(OutcomeOK, time.Millisecond)
	if c := tally.Counts(); c != (Counts{}) {
		t.Errorf("a nil Tally's Counts = %+v, want zero", c)
	}
}

// Every latency falls in a bucket whose top is above it by at most 1/8 (or 1 µs), and
// longer latencies never fall in earlier buckets.
func TestLatencyBuckets(t *testing.T) {
	prev := 0
	for d := time.Duration(0); d < 100*time.Second; d = d*17/16 + time.Microsecond {
		i := latencyBucket(d)
		if i < prev {
			t.Fatalf("latencyBucket(%v) = %d, below latencyBucket of a shorter latency (%d)", d, i, prev)
		}
		prev = i
		top, us := latencyTop(i), d.Truncate(time.Microsecond)
		if top <= us || top > us+max(us/8, time.Microsecond) {
			t.Fatalf("latencyTop(latencyBucket(%v)) = %v, want above %v by at most 1/8 or 1µs", d, top, us)
		}
	}
	if i := latencyBucket(-time.Second); i != 0 {
		t.Errorf("latencyBucket(-1s) = %d, want 0", i)
	}
	if i := latencyBucket(math.MaxInt64); i != latencyBuckets-1 {
		t.Errorf("latencyBucket(MaxInt64) = %d, want the last bucket %d", i, latencyBuckets-1)
	}
}

func TestReplyOutcome(t *testing.T) {
	tests := []struct {
		r    Reply
		want Outcome
	}{
		{Reply{Status: 200, Reason: "ok"}, OutcomeOK},
		{Reply{Status: 202, Reason: "pending"}, OutcomePending},
		{Reply{Status: 409, Reason: "sold out"}, OutcomeSoldOut},
		{Reply{Status: 503, Reason: "busy, try again"}, OutcomeBusy},
		{Reply{Status: 429, Reason: "slow down"}, OutcomeBusy},
		{Reply{Status: 409, Reason: "already bought"}, OutcomeOther},
		{Reply{Status: 200, Reason: "error", Err: errors.New("reset")}, OutcomeOther},
		{Reply{Reason: "error", Err: errors.New("refused")}, OutcomeOther},
	}
	for _, tc := range tests {
		if got := tc.r.Outcome(); got != tc.want {
			t.Errorf("Reply{%d %q err %v}.Outcome() = %v, want %v", tc.r.Status, tc.r.Reason, tc.r.Err, got, tc.want)
		}
	}
}

// Into a pipe or a file the line is off: no Tally to count in, nothing written.
func TestShowProgressOffWhenNotATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var stops []func()
	for _, out := range []*os.File{nil, f, w} {
		tally, stop := ShowProgress(out, "burst", 100, 0)
		tally.Sent()
		tally.Answered(OutcomeOK, time.Millisecond)
		stops = append(stops, stop)
		if tally != nil {
			t.Errorf("ShowProgress(%v) returned a Tally, want nil (the line off)", out)
		}
	}
	time.Sleep(2 * progressEvery) // time to draw, had it started
	for _, stop := range stops {
		stop()
	}
	if st, err := f.Stat(); err != nil || st.Size() != 0 {
		t.Errorf("the file holds %d bytes (%v), want none", st.Size(), err)
	}
	w.Close()
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 {
		t.Errorf("the pipe got %q (%v), want nothing", b, err)
	}
}
