package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"secbuy/test/load"
	"secbuy/test/suite"
)

// rssMB returns the resident memory of process pid, in MB.
func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// TestPageStreams opens 1,000 live stock streams on one order-web: together they cost it
// less than 50 MB, and every one of them hears of a sale within a second of its answer.
func TestPageStreams(t *testing.T) {
	const streams = 1000
	s := suite.New(t, nil)
	client := load.Client(8)
	cfg := load.Config{StockURL: s.URL("stock-web"), OrderURL: s.URL("order-web"), AdminKey: suite.AdminKey}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, err := createCommodity(cfg, client, 5)
	if err != nil {
		t.Fatal(err)
	}
	key := strconv.FormatInt(id, 10)
	pid := s.Pid("order-web")
	before := rssMB(t, pid)

	// Each stream reports when it is open, and when it first sees fewer than 5 left.
	tr := &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	sc := &http.Client{Transport: tr}
	var opened, saw sync.WaitGroup
	opened.Add(streams)
	saw.Add(streams)
	seen := make([]time.Time, streams)
	errs := make(chan error, streams)
	for i := range streams {
		go func() {
			defer saw.Done()
			once := sync.OnceFunc(opened.Done)
			defer once()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL("order-web")+"/page/stream", nil)
			rsp, err := sc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer rsp.Body.Close()
			if rsp.StatusCode != 200 || rsp.Header.Get("Content-Type") != "text/event-stream" {
				errs <- fmt.Errorf("stream: status %d, type %q", rsp.StatusCode, rsp.Header.Get("Content-Type"))
				return
			}
			sc := bufio.NewScanner(rsp.Body)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "event: connected") {
					once()
				}
				data, ok := strings.CutPrefix(line, "data: ")
				if !ok || !strings.Contains(data, `"left"`) {
					continue
				}
				var ev struct {
					Left map[string]int64 `json:"left"`
				}
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					errs <- fmt.Errorf("stream event %q: %w", data, err)
					return
				}
				if n, ok := ev.Left[key]; ok && n < 5 {
					seen[i] = time.Now()
					return
				}
			}
			errs <- fmt.Errorf("stream ended before the sale: %w", sc.Err())
		}()
	}
	opened.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	open := rssMB(t, pid)

	tok := s.Token(7)
	sold := load.Buy(ctx, client, cfg, tok, 7, id, "stream-sale")
	answered := time.Now()
	if sold.Status != 200 {
		t.Fatalf("the sale: status %d %s", sold.Status, sold.Reason)
	}
	saw.Wait()
	// The streams' memory: the most of it with every stream open, before and after the
	// sale's event went to all of them.
	after := max(open, rssMB(t, pid))
	t.Logf("order-web resident memory: %.1f MB before, %.1f MB with %d streams open (+%.1f MB)", before, after, streams, after-before)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var slowest time.Duration
	for _, at := range seen {
		slowest = max(slowest, at.Sub(answered))
	}
	t.Logf("every stream saw the sale within %v of its answer", slowest)
	if slowest > time.Second {
		t.Errorf("the slowest stream heard of the sale %v after it, want within 1 s", slowest)
	}
	if grown := after - before; grown >= 50 {
		t.Errorf("%d streams cost order-web %.1f MB, want under 50 MB", streams, grown)
	}
}
