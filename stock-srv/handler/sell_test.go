package handler

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"secbuy/basic/dbtest"
	"secbuy/basic/testutil"
	"secbuy/proto/outcome"
	"secbuy/stock-srv/migrations"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
)

// countingRepo is the real repo, counting the batches the handler sends it.
type countingRepo struct {
	*repo.Repo
	batches, items atomic.Int64
}

func (c *countingRepo) SellBatch(ctx context.Context, items []repo.SellItem) ([]repo.SellResult, error) {
	c.batches.Add(1)
	c.items.Add(int64(len(items)))
	return c.Repo.SellBatch(ctx, items)
}

func newDBHandler(t *testing.T, count int64) (*Stock, *countingRepo, int64) {
	t.Helper()
	store := &countingRepo{Repo: repo.New(dbtest.New(t, "stock", migrations.FS))}
	c, err := store.Create(context.Background(), repo.Commodity{Name: "phone", Count: count})
	if err != nil {
		t.Fatal(err)
	}
	return newHandler(t, store), store, c.ID
}

// sellRace releases n single Sell calls at once; call i uses request id rid(i), "u<user>-...".
func sellRace(t *testing.T, h *Stock, id int64, n int, rid func(i int) string) []*pb.Response {
	t.Helper()
	out := make([]*pb.Response, n)
	testutil.Race(n, func(i int) {
		out[i] = &pb.Response{}
		var user int64
		_, _ = fmt.Sscanf(rid(i), "u%d", &user)
		in := &pb.SellRequest{Id: id, RequestId: rid(i), UserId: user}
		if err := h.Sell(context.Background(), in, out[i]); err != nil {
			t.Errorf("Sell %s: %v", in.RequestId, err)
		}
	})
	return out
}

func checkAudit(t *testing.T, store Store, id, want int64) {
	t.Helper()
	a, err := store.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Sale != want || a.Granted != want || a.Sale > a.Count {
		t.Errorf("audit = %+v; want sale == granted == %d <= count", a, want)
	}
}

// TestSellRaceThroughBatcher: 300 concurrent single Sells of 100 units, batched by the
// handler, sell exactly 100, in fewer transactions than calls.
func TestSellRaceThroughBatcher(t *testing.T) {
	t.Parallel()
	h, store, id := newDBHandler(t, 100)
	out := sellRace(t, h, id, 300, func(i int) string { return fmt.Sprintf("u%d-r", 1000+i) })
	var ok, soldOut int
	for _, r := range out {
		switch {
		case r.Success:
			ok++
		case r.Error.GetCode() == 409 && r.Error.GetReason() == outcome.Reason_SOLD_OUT:
			soldOut++
		default:
			t.Errorf("unexpected answer %v", r)
		}
	}
	if ok != 100 || soldOut != 200 {
		t.Errorf("%d granted, %d sold out; want 100 and 200", ok, soldOut)
	}
	if b := store.batches.Load(); b >= 300 || store.items.Load() != 300 {
		t.Errorf("%d batches carried %d items; want 300 items in fewer batches", b, store.items.Load())
	}
	t.Logf("300 calls in %d batches", store.batches.Load())
	checkAudit(t, store, id, 100)
}

// TestSellRaceRepeatedThroughBatcher: 300 calls with 250 distinct request ids; the copies,
// in the same batch or not, get one answer and one unit.
func TestSellRaceRepeatedThroughBatcher(t *testing.T) {
	t.Parallel()
	h, store, id := newDBHandler(t, 100)
	rid := func(i int) string { return fmt.Sprintf("u%d-r", 1000+i%250) }
	out := sellRace(t, h, id, 300, rid)
	answers := map[string]bool{}
	for i, r := range out {
		if !r.Success && r.Error.GetReason() != outcome.Reason_SOLD_OUT {
			t.Fatalf("unexpected answer %v", r)
		}
		if prev, seen := answers[rid(i)]; seen && prev != r.Success {
			t.Errorf("request %s answered %v and %v", rid(i), prev, r.Success)
		}
		answers[rid(i)] = r.Success
	}
	var granted int
	for _, ok := range answers {
		if ok {
			granted++
		}
	}
	if granted != 100 {
		t.Errorf("%d distinct request ids granted, want 100", granted)
	}
	checkAudit(t, store, id, 100)
}

// TestSellBatchRPCOnDatabase: a SellBatch call straddling the last units, with a bad item
// and an unknown commodity in it.
func TestSellBatchRPCOnDatabase(t *testing.T) {
	t.Parallel()
	h, store, id := newDBHandler(t, 10)
	in := &pb.SellBatchRequest{}
	for i := 0; i < 25; i++ {
		in.Items = append(in.Items, &pb.SellRequest{Id: id, RequestId: fmt.Sprint("r", i), UserId: int64(1 + i)})
	}
	in.Items = append(in.Items, &pb.SellRequest{Id: id, UserId: 1}, &pb.SellRequest{Id: 987654, RequestId: "x", UserId: 1})
	var out pb.SellBatchResponse
	if err := h.SellBatch(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	for i, r := range out.Items {
		want := int32(0)
		switch {
		case i == 26:
			want = 404
		case i == 25:
			want = 400
		case i >= 10:
			want = 409
		}
		if r.Error.GetCode() != want || r.Success != (want == 0) {
			t.Errorf("item %d: %v, want code %d", i, r, want)
		}
	}
	checkAudit(t, store, id, 10)
}

// BenchmarkSellBatched: single Sell calls from 64 goroutines on one hot commodity, batched
// by the handler; compare units/s with BenchmarkSell/batch1 in the repo.
func BenchmarkSellBatched(b *testing.B) {
	store := &countingRepo{Repo: repo.New(dbtest.New(b, "stock", migrations.FS))}
	c, err := store.Create(context.Background(), repo.Commodity{Name: "phone", Count: 1_000_000_000})
	if err != nil {
		b.Fatal(err)
	}
	h := New(store)
	defer h.Close()
	var next atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			n := next.Add(1)
			var out pb.Response
			if err := h.Sell(context.Background(), &pb.SellRequest{Id: c.ID, RequestId: fmt.Sprint("u", n), UserId: n}, &out); err != nil || !out.Success {
				b.Fatal(err, &out)
			}
		}
	})
	b.ReportMetric(float64(next.Load())/b.Elapsed().Seconds(), "units/s")
	b.ReportMetric(float64(store.items.Load())/float64(store.batches.Load()), "items/batch")
}
