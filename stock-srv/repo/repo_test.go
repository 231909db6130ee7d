package repo_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/stock-srv/migrations"
	"secbuy/stock-srv/repo"
)

func newRepo(t *testing.T) *repo.Repo {
	t.Helper()
	r, _ := newRepoDB(t)
	return r
}

// newRepoDB also returns the database, for the checks that look at stock_sale directly.
func newRepoDB(t testing.TB) (*repo.Repo, *db.DB) {
	t.Helper()
	d := dbtest.New(t, "stock", migrations.FS)
	r := repo.New(d)
	r.SetReturnDelay(200 * time.Millisecond) // a unit given back is on sale again soon
	return r, d
}

func create(t testing.TB, r *repo.Repo, count int64) repo.Commodity {
	t.Helper()
	c, err := r.Create(context.Background(), repo.Commodity{Name: "phone", Count: count})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// outOfWindow creates two commodities of 5 units whose sale window is closed: one that
// starts in an hour, one that ended an hour ago.
func outOfWindow(t testing.TB, r *repo.Repo) (notYet, over repo.Commodity) {
	t.Helper()
	future := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Hour)
	longAgo := past.Add(-time.Hour)
	var err error
	if notYet, err = r.Create(context.Background(), repo.Commodity{Name: "later", Count: 5, StartTime: &future}); err != nil {
		t.Fatal(err)
	}
	if over, err = r.Create(context.Background(), repo.Commodity{Name: "over", Count: 5, StartTime: &longAgo, EndTime: &past}); err != nil {
		t.Fatal(err)
	}
	return notYet, over
}

// race releases n goroutines at once; goroutine i sells with requestID(i) for user 1000+i.
func race(r *repo.Repo, id int64, n int, requestID func(i int) string) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, errs[i] = r.Sell(context.Background(), id, requestID(i), userOf(requestID(i)))
		}(i)
	}
	close(start)
	wg.Wait()
	return errs
}

// userOf is the buyer of a request id "u<N>-...": N in decimal, a numeric user.
func userOf(requestID string) string {
	var u int64
	_, _ = fmt.Sscanf(requestID, "u%d", &u)
	return fmt.Sprint(u)
}

func checkAudit(t *testing.T, r *repo.Repo, id, wantSale int64) {
	t.Helper()
	a, err := r.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Sale != wantSale || a.Granted != wantSale || a.Sale > a.Count {
		t.Errorf("audit = %+v; want sale == granted == %d <= count", a, wantSale)
	}
}

func TestSellRaceNeverOversells(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	c := create(t, r, 100)
	errs := race(r, c.ID, 300, func(i int) string { return fmt.Sprintf("u%d-r", 1000+i) })
	var ok, soldOut int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, repo.ErrSoldOut):
			soldOut++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 100 || soldOut != 200 {
		t.Errorf("got %d granted, %d sold out; want 100 and 200", ok, soldOut)
	}
	checkAudit(t, r, c.ID, 100)
}

func TestSellRaceRepeatedRequestIDs(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	c := create(t, r, 100)
	// 300 goroutines, 250 distinct request ids: goroutines 250..299 repeat the ids of 0..49.
	errs := race(r, c.ID, 300, func(i int) string { return fmt.Sprintf("u%d-r", 1000+i%250) })
	answers := map[string]error{}
	for i, err := range errs {
		if err != nil && !errors.Is(err, repo.ErrSoldOut) {
			t.Fatalf("unexpected error: %v", err)
		}
		id := fmt.Sprintf("u%d-r", 1000+i%250)
		if prev, seen := answers[id]; seen && !errors.Is(err, prev) && (err != nil || prev != nil) {
			t.Errorf("request %s answered %v and %v", id, prev, err)
		}
		answers[id] = err
	}
	var granted int
	for _, err := range answers {
		if err == nil {
			granted++
		}
	}
	if granted != 100 {
		t.Errorf("%d distinct request ids granted, want 100", granted)
	}
	checkAudit(t, r, c.ID, 100)
}

func TestSellSameRequestSameAnswer(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	ctx := context.Background()
	c := create(t, r, 1)
	if _, err := r.Sell(ctx, c.ID, "u1-a", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sell(ctx, c.ID, "u2-b", "2"); !errors.Is(err, repo.ErrSoldOut) {
		t.Fatalf("second buyer: %v, want sold out", err)
	}
	for i := 0; i < 3; i++ {
		got, err := r.Sell(ctx, c.ID, "u1-a", "1")
		if err != nil || got.Sale != 1 {
			t.Errorf("repeat of a grant: %+v %v; want granted again with sale 1", got, err)
		}
		if _, err := r.Sell(ctx, c.ID, "u2-b", "2"); !errors.Is(err, repo.ErrSoldOut) {
			t.Errorf("repeat of a refusal: %v; want sold out again", err)
		}
	}
	if _, err := r.Sell(ctx, c.ID, "u1-a", "99"); !errors.Is(err, repo.ErrRequestReused) {
		t.Errorf("request id reused by another user: %v, want ErrRequestReused", err)
	}
	checkAudit(t, r, c.ID, 1)
}

func TestSellWindowAndUnknown(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	ctx := context.Background()
	notYet, over := outOfWindow(t, r)
	for _, c := range []struct {
		name string
		id   int64
		want error
	}{
		{"not started", notYet.ID, repo.ErrNotStarted},
		{"ended", over.ID, repo.ErrEnded},
		{"unknown", 987654, repo.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := r.Sell(ctx, c.id, "u5-"+c.name, "5"); !errors.Is(err, c.want) {
				t.Errorf("Sell = %v, want %v", err, c.want)
			}
		})
	}
	checkAudit(t, r, notYet.ID, 0)
	checkAudit(t, r, over.ID, 0)
}

func TestDatabaseRefusesBadRows(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	ctx := context.Background()
	start := time.Now()
	before := start.Add(-time.Minute)
	for name, c := range map[string]repo.Commodity{
		"empty name":       {Count: 1},
		"zero count":       {Name: "x"},
		"negative count":   {Name: "x", Count: -1},
		"end before start": {Name: "x", Count: 1, StartTime: &start, EndTime: &before},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.Create(ctx, c); err == nil {
				t.Errorf("Create(%+v) succeeded, want the schema to refuse it", c)
			}
		})
	}
	cs, err := r.List(ctx, repo.ListQuery{Limit: 10})
	if err != nil || len(cs) != 0 {
		t.Errorf("list after refused creates = %v, %v; want nothing stored", cs, err)
	}
}

// BenchmarkSell compares one unit per transaction with 64 per transaction on one hot
// commodity, from 64 goroutines; units/s is the figure to compare.
func BenchmarkSell(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprint("batch", size), func(b *testing.B) {
			r, _ := newRepoDB(b)
			c := create(b, r, 1_000_000_000)
			var next atomic.Int64
			b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				items := make([]repo.SellItem, size)
				for pb.Next() {
					for i := range items {
						n := next.Add(1)
						items[i] = repo.SellItem{ID: c.ID, RequestID: fmt.Sprintf("u%d-b", n), Buyer: fmt.Sprint(n)}
					}
					res, err := r.SellBatch(context.Background(), items)
					if err != nil || res[0].Err != nil {
						b.Fatal(err, res[0].Err)
					}
				}
			})
			b.ReportMetric(float64(next.Load())/b.Elapsed().Seconds(), "units/s")
		})
	}
}

var benchClients = 64

// TestListNewestAndCurrent pages by id both ways, and current leaves out the commodities
// whose sale has ended.
func TestListNewestAndCurrent(t *testing.T) {
	r, _ := newRepoDB(t)
	ctx := context.Background()
	past, pastEnd := time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)
	var ids []int64
	for _, c := range []repo.Commodity{
		{Name: "open", Count: 1},
		{Name: "ended", Count: 1, StartTime: &past, EndTime: &pastEnd},
		{Name: "until later", Count: 1, EndTime: &future},
	} {
		got, err := r.Create(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	for _, tc := range []struct {
		q    repo.ListQuery
		want []int64
	}{
		{repo.ListQuery{Limit: 10}, ids},
		{repo.ListQuery{Limit: 10, Newest: true}, []int64{ids[2], ids[1], ids[0]}},
		{repo.ListQuery{Limit: 10, Current: true}, []int64{ids[0], ids[2]}},
		{repo.ListQuery{Limit: 1, Offset: 1, Newest: true, Current: true}, []int64{ids[0]}},
	} {
		cs, err := r.List(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, c := range cs {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}
