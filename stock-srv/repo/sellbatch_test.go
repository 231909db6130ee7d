package repo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/stock-srv/repo"
)

// batchOf asks commodity id for each request id, for the user the request id names.
func batchOf(id int64, rids ...string) []repo.SellItem {
	items := make([]repo.SellItem, len(rids))
	for i, rid := range rids {
		items[i] = repo.SellItem{ID: id, RequestID: rid, Buyer: userOf(rid)}
	}
	return items
}

// rids returns "u<from>-r" .. "u<from+n-1>-r".
func rids(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("u%d-r", from+i)
	}
	return out
}

// recorded counts the stock_sale rows of these request ids.
func recorded(t *testing.T, d *db.DB, rids ...string) int64 {
	t.Helper()
	var n int64
	if err := d.Raw(`SELECT count(*) FROM stock_sale WHERE request_id IN ?`, rids).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func sellBatch(t *testing.T, r *repo.Repo, items []repo.SellItem) []repo.SellResult {
	t.Helper()
	res, err := r.SellBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(items) {
		t.Fatalf("%d results for %d items", len(res), len(items))
	}
	return res
}

func TestSellBatchStraddlesLastUnit(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	c := create(t, r, 12)
	for _, rid := range rids(1, 2) {
		if _, err := r.Sell(context.Background(), c.ID, rid, userOf(rid)); err != nil {
			t.Fatal(err)
		}
	}
	// 10 units left, 25 buyers in one batch: the first 10 in batch order get them.
	batch := batchOf(c.ID, rids(100, 25)...)
	for round := 0; round < 2; round++ { // the second round repeats every request id
		for i, res := range sellBatch(t, r, batch) {
			want := error(nil)
			if i >= 10 {
				want = repo.ErrSoldOut
			}
			if !errors.Is(res.Err, want) || (want == nil && res.Err != nil) {
				t.Errorf("round %d item %d: %v, want %v", round, i, res.Err, want)
			}
			if res.Commodity.ID != c.ID || res.Commodity.Sale != 12 {
				t.Errorf("round %d item %d: commodity %+v, want sale 12", round, i, res.Commodity)
			}
		}
		checkAudit(t, r, c.ID, 12)
	}
	if n := recorded(t, d, rids(100, 25)...); n != 25 {
		t.Errorf("%d sale records, want 25", n)
	}
}

func TestSellBatchDuplicateRequestIDs(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	c := create(t, r, 2)
	batch := batchOf(c.ID, "u1-a", "u2-b", "u1-a", "u3-c", "u2-b", "u1-a")
	batch = append(batch, repo.SellItem{ID: c.ID, RequestID: "u1-a", Buyer: "99"}) // another user
	want := []error{nil, nil, nil, repo.ErrSoldOut, nil, nil, repo.ErrRequestReused}
	for round := 0; round < 2; round++ {
		for i, res := range sellBatch(t, r, batch) {
			if !errors.Is(res.Err, want[i]) || (want[i] == nil && res.Err != nil) {
				t.Errorf("round %d item %d (%s): %v, want %v", round, i, batch[i].RequestID, res.Err, want[i])
			}
		}
		checkAudit(t, r, c.ID, 2)
	}
	if n := recorded(t, d, "u1-a", "u2-b", "u3-c"); n != 3 {
		t.Errorf("%d sale records, want 3", n)
	}

	// One unit, the same request twice around another: both copies get it.
	one := create(t, r, 1)
	res := sellBatch(t, r, batchOf(one.ID, "u7-x", "u8-y", "u7-x"))
	if res[0].Err != nil || res[2].Err != nil || !errors.Is(res[1].Err, repo.ErrSoldOut) {
		t.Errorf("answers %v %v %v; want granted, sold out, granted", res[0].Err, res[1].Err, res[2].Err)
	}
	checkAudit(t, r, one.ID, 1)
}

func TestSellBatchMixed(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	ctx := context.Background()
	open := create(t, r, 2)
	gone := create(t, r, 1)
	if _, err := r.Sell(ctx, gone.ID, "u1-pre", "1"); err != nil {
		t.Fatal(err)
	}
	notYet, over := outOfWindow(t, r)
	const unknown = 987654
	batch := []repo.SellItem{
		{ID: open.ID, RequestID: "u10-a", Buyer: "10"},
		{ID: over.ID, RequestID: "u11-b", Buyer: "11"},
		{ID: unknown, RequestID: "u12-c", Buyer: "12"},
		{ID: notYet.ID, RequestID: "u13-d", Buyer: "13"},
		{ID: open.ID, RequestID: "u14-e", Buyer: "14"},
		{ID: gone.ID, RequestID: "u15-f", Buyer: "15"},
		{ID: open.ID, RequestID: "u16-g", Buyer: "16"},
		{ID: gone.ID, RequestID: "u1-pre", Buyer: "1"}, // answered before: granted again
		{ID: unknown, RequestID: "u17-h", Buyer: "17"}, // unknown, then the same id for a real one
		{ID: open.ID, RequestID: "u17-h", Buyer: "17"},
	}
	want := []error{nil, repo.ErrEnded, repo.ErrNotFound, repo.ErrNotStarted, nil,
		repo.ErrSoldOut, repo.ErrSoldOut, nil, repo.ErrNotFound, repo.ErrSoldOut}
	res := sellBatch(t, r, batch)
	for i := range batch {
		if !errors.Is(res[i].Err, want[i]) || (want[i] == nil && res[i].Err != nil) {
			t.Errorf("item %d (%s): %v, want %v", i, batch[i].RequestID, res[i].Err, want[i])
		}
		if wantID := batch[i].ID; wantID != unknown && res[i].Commodity.ID != wantID {
			t.Errorf("item %d: commodity %d, want %d", i, res[i].Commodity.ID, wantID)
		}
	}
	if res[2].Commodity.ID != 0 || res[0].Commodity.Sale != 2 {
		t.Errorf("commodities %+v and %+v; want none for the unknown one, sale 2 for the open one", res[2].Commodity, res[0].Commodity)
	}
	if n := recorded(t, d, "u12-c"); n != 0 {
		t.Errorf("the unknown commodity's request was recorded")
	}
	if n := recorded(t, d, "u10-a", "u11-b", "u13-d", "u14-e", "u15-f", "u16-g", "u17-h"); n != 7 {
		t.Errorf("%d sale records, want 7", n)
	}
	checkAudit(t, r, open.ID, 2)
	checkAudit(t, r, gone.ID, 1)
	checkAudit(t, r, notYet.ID, 0)
	checkAudit(t, r, over.ID, 0)
}

// TestSellBatchConcurrent releases 20 batches at once on two commodities. Neighbouring
// batches share request ids and every batch is shuffled, so batches wait on each other's
// request ids and rows in every order: no deadlock, no oversell, no refusal while stock
// remains, and one answer per request id.
func TestSellBatchConcurrent(t *testing.T) {
	t.Parallel()
	for _, units := range []int64{300, 1000} {
		t.Run(fmt.Sprint(units, " units"), func(t *testing.T) {
			r := newRepo(t)
			a, b := create(t, r, units), create(t, r, 50)
			commodity := func(n int) int64 { // a request id is always for the same commodity
				if n%3 == 0 {
					return b.ID
				}
				return a.ID
			}
			const batches, size, step = 20, 40, 30 // 10 ids shared with the next batch
			items := make([][]repo.SellItem, batches)
			results := make([][]repo.SellResult, batches)
			errs := make([]error, batches)
			for g := range items {
				for j := 0; j < size; j++ {
					n := 1000 + g*step + j
					items[g] = append(items[g], repo.SellItem{ID: commodity(n), RequestID: fmt.Sprintf("u%d-r", n), Buyer: fmt.Sprint(n)})
				}
				rand.New(rand.NewSource(int64(g))).Shuffle(size, func(i, j int) {
					items[g][i], items[g][j] = items[g][j], items[g][i]
				})
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := range items {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					results[g], errs[g] = r.SellBatch(context.Background(), items[g])
				}()
			}
			close(start)
			wg.Wait()

			answers := map[string]error{}
			granted := map[int64]int64{}
			distinct := map[int64]int64{}
			for g := range items {
				if errs[g] != nil {
					t.Fatalf("batch %d: %v", g, errs[g])
				}
				for i, res := range results[g] {
					it := items[g][i]
					if res.Err != nil && !errors.Is(res.Err, repo.ErrSoldOut) {
						t.Fatalf("%s: %v", it.RequestID, res.Err)
					}
					prev, seen := answers[it.RequestID]
					if seen && (prev == nil) != (res.Err == nil) {
						t.Errorf("%s answered %v and %v", it.RequestID, prev, res.Err)
					}
					if !seen {
						answers[it.RequestID] = res.Err
						distinct[it.ID]++
						if res.Err == nil {
							granted[it.ID]++
						}
					}
				}
			}
			for _, c := range []repo.Commodity{a, b} {
				if want := min(c.Count, distinct[c.ID]); granted[c.ID] != want {
					t.Errorf("commodity %d: %d granted of %d distinct requests for %d units; want %d",
						c.ID, granted[c.ID], distinct[c.ID], c.Count, want)
				}
				checkAudit(t, r, c.ID, granted[c.ID])
			}
		})
	}
}

// TestSellBatchFailedTransaction fails a batch half-way: its sale records are written, then
// it waits for the commodity's row lock (held by another transaction) and its context is
// cancelled. Nothing may be granted or recorded, and the same batch succeeds afterwards.
func TestSellBatchFailedTransaction(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	c := create(t, r, 5)
	if _, err := r.Sell(context.Background(), c.ID, "u1-pre", "1"); err != nil {
		t.Fatal(err)
	}
	batch := batchOf(c.ID, "u2-a", "u1-pre", "u3-b", "u2-a", "u4-c")

	blocker := d.Begin()
	if err := blocker.Exec(`SELECT 1 FROM stock WHERE id = ? FOR NO KEY UPDATE`, c.ID).Error; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		res, err := r.SellBatch(ctx, batch)
		if err == nil {
			err = fmt.Errorf("batch succeeded: %+v", res)
		} else if res != nil {
			err = fmt.Errorf("failed batch returned results: %+v", res)
		} else {
			err = nil
		}
		done <- err
	}()
	// Wait until the batch is stuck on the row lock, past its insert.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int64
		if err := d.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE 'WITH cur%'`).Scan(&waiting).Error; err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never waited for the row lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := blocker.Rollback().Error; err != nil {
		t.Fatal(err)
	}
	if n := recorded(t, d, "u2-a", "u3-b", "u4-c"); n != 0 {
		t.Errorf("%d sale records left by the failed batch", n)
	}
	checkAudit(t, r, c.ID, 1)

	for i, res := range sellBatch(t, r, batch) {
		if res.Err != nil || res.Commodity.Sale != 4 {
			t.Errorf("retry item %d: %v, sale %d; want granted, sale 4", i, res.Err, res.Commodity.Sale)
		}
	}
	checkAudit(t, r, c.ID, 4)
}
