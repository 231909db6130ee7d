package handler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/testutil"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

// countingStock answers GetCommodity with rsp/err, safely under concurrency, and counts
// the calls; while gate is open (non-nil and not closed) each call waits for it. A call
// whose context ended by then fails, as a real RPC would.
type countingStock struct {
	pb.StockService
	calls atomic.Int64
	gate  chan struct{}

	mu  sync.Mutex
	rsp *pb.Response
	err error
}

func (f *countingStock) GetCommodity(ctx context.Context, _ *pb.Request, _ ...client.CallOption) (*pb.Response, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if err := ctx.Err(); err != nil {
		return nil, merrors.Timeout("x", "%v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rsp, f.err
}

func (f *countingStock) CreateCommodity(_ context.Context, in *pb.Commodity, _ ...client.CallOption) (*pb.Response, error) {
	return &pb.Response{Success: true, Commodity: &pb.Commodity{Id: 7, Name: in.Name, Count: in.Count}}, nil
}

func (f *countingStock) set(rsp *pb.Response, err error) {
	f.mu.Lock()
	f.rsp, f.err = rsp, err
	f.mu.Unlock()
}

// fakeClock is a settable clock for the cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newCached returns routes over f whose cache runs on the returned clock.
func newCached(f *countingStock) (http.Handler, *fakeClock) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	h := New(f, adminKey, 4096)
	h.cache.now = clock.Now
	return h.Routes(), clock
}

// get sends GET target and returns the status and the commodity's sale (-1 if none).
func get(t *testing.T, h http.Handler, target string) (int, int64) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
	var rep reply
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Errorf("reply is not JSON: %q", w.Body.String())
		return w.Code, -1
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q, want JSON", ct)
	}
	if rep.Commodity == nil {
		return w.Code, -1
	}
	return w.Code, rep.Commodity.Sale
}

func found(sale int64) *pb.Response {
	return &pb.Response{Success: true, Commodity: &pb.Commodity{Id: 5, Name: "hot", Count: 100, Sale: sale}}
}

func TestGetCoalescesConcurrentReaders(t *testing.T) {
	t.Parallel()
	const readers = 64
	f := &countingStock{gate: make(chan struct{}), rsp: found(3)}
	h, clock := newCached(f)

	start := make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]int, readers)
	sales := make([]int64, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], sales[i] = get(t, h, "/stock/get?id=5")
		}()
	}
	close(start)
	// Once the first RPC is under way, let it answer. Readers that came meanwhile waited for
	// it; a reader that comes late finds the answer in the cache, so the count below is
	// exact whatever the timing.
	testutil.Eventually(t, 5*time.Second, "the first reader's RPC", func() bool { return f.calls.Load() == 1 })
	close(f.gate)
	wg.Wait()

	if got := f.calls.Load(); got != 1 {
		t.Errorf("%d readers made %d RPCs, want 1", readers, got)
	}
	for i := range readers {
		if codes[i] != 200 || sales[i] != 3 {
			t.Fatalf("reader %d got %d sale %d, want 200 sale 3", i, codes[i], sales[i])
		}
	}

	// Within the TTL the cached answer stands, even though stock-srv now says otherwise.
	f.set(found(4), nil)
	clock.Advance(CacheTTL - time.Millisecond)
	if code, sale := get(t, h, "/stock/get?id=5"); code != 200 || sale != 3 || f.calls.Load() != 1 {
		t.Errorf("within TTL: got %d sale %d after %d RPCs, want 200 sale 3 after 1", code, sale, f.calls.Load())
	}
	// After it, one new RPC, and its answer is cached in turn.
	clock.Advance(time.Millisecond)
	for range 3 {
		if code, sale := get(t, h, "/stock/get?id=5"); code != 200 || sale != 4 {
			t.Errorf("after TTL: got %d sale %d, want 200 sale 4", code, sale)
		}
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("after TTL: %d RPCs in all, want 2", got)
	}
	// Another id is its own entry.
	if get(t, h, "/stock/get?id=6"); f.calls.Load() != 3 {
		t.Errorf("another id: %d RPCs in all, want 3", f.calls.Load())
	}
}

func TestGetCachesOnlyFinalAnswers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		rsp       *pb.Response
		err       error
		wantCode  int
		wantCalls int64 // after two gets
	}{
		{"commodity is cached", found(1), nil, 200, 1},
		{"unknown id is cached", &pb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)}, nil, 404, 1},
		{"rpc failure is not cached", nil, merrors.InternalServerError("x", "storage unavailable"), 503, 2},
		{"rpc timeout is not cached", nil, merrors.Timeout("x", "timeout"), 503, 2},
		{"refusal other than not found is not cached", &pb.Response{Error: outcome.Refuse(outcome.Reason_NOT_STARTED)}, nil, 409, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &countingStock{rsp: c.rsp, err: c.err}
			h, _ := newCached(f)
			for i := range 2 {
				if code, _ := get(t, h, "/stock/get?id=5"); code != c.wantCode {
					t.Errorf("get %d: status %d, want %d", i+1, code, c.wantCode)
				}
			}
			if got := f.calls.Load(); got != c.wantCalls {
				t.Errorf("RPCs = %d, want %d", got, c.wantCalls)
			}
		})
	}
}

func TestCreateDropsCachedUnknownID(t *testing.T) {
	t.Parallel()
	f := &countingStock{rsp: &pb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)}}
	h, _ := newCached(f)
	if code, _ := get(t, h, "/stock/get?id=7"); code != 404 {
		t.Fatalf("before create: status %d, want 404", code)
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/stock/create", strings.NewReader(`{"name":"new","count":5}`))
	r.Header.Set("X-Admin-Key", adminKey)
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("create: status %d %s", w.Code, w.Body.String())
	}
	f.set(&pb.Response{Success: true, Commodity: &pb.Commodity{Id: 7, Name: "new", Count: 5}}, nil)
	if code, sale := get(t, h, "/stock/get?id=7"); code != 200 || sale != 0 {
		t.Errorf("after create: got %d sale %d, want 200 sale 0", code, sale)
	}
}

func TestGetReaderLeavingDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	f := &countingStock{gate: make(chan struct{}), rsp: found(2)}
	h, _ := newCached(f)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	go func() {
		defer close(first)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/stock/get?id=5", nil).WithContext(ctx))
	}()
	testutil.Eventually(t, 5*time.Second, "the first reader's RPC", func() bool { return f.calls.Load() > 0 })
	second := make(chan int64)
	go func() {
		_, sale := get(t, h, "/stock/get?id=5")
		second <- sale
	}()
	cancel() // the reader whose request started the RPC goes away
	<-first
	close(f.gate)
	if sale := <-second; sale != 2 {
		t.Errorf("the reader that stayed got sale %d, want 2", sale)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("RPCs = %d, want 1", got)
	}
}
