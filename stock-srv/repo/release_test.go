package repo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/basic/testutil"
	"secbuy/stock-srv/repo"
)

// saleRow is a stock_sale row's state.
type saleRow struct {
	Granted, Released bool
}

func saleOf(t *testing.T, d *db.DB, rid string) saleRow {
	t.Helper()
	var s saleRow
	if err := d.Raw(`SELECT granted, released FROM stock_sale WHERE request_id = ?`, rid).Scan(&s).Error; err != nil {
		t.Fatal(err)
	}
	return s
}

// sell grants rid a unit of commodity id or fails the test.
func sell(t *testing.T, r *repo.Repo, id int64, rid string) {
	t.Helper()
	if _, err := r.Sell(context.Background(), id, rid, userOf(rid)); err != nil {
		t.Fatalf("sell %s: %v", rid, err)
	}
}

func TestReleaseOutcomes(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	ctx := context.Background()
	c := create(t, r, 2)
	sell(t, r, c.ID, "u1-a")
	sell(t, r, c.ID, "u2-a")
	if _, err := r.Sell(ctx, c.ID, "u3-a", "3"); !errors.Is(err, repo.ErrSoldOut) {
		t.Fatalf("third buyer: %v; want sold out", err)
	}

	got, err := r.Release(ctx, "u1-a")
	if err != nil || got != (repo.ReleaseResult{Sid: c.ID, Released: true}) {
		t.Fatalf("Release(u1-a) = %+v, %v; want released now", got, err)
	}
	checkAudit(t, r, c.ID, 1)
	if s := saleOf(t, d, "u1-a"); s != (saleRow{true, true}) {
		t.Errorf("stock_sale u1-a = %+v; want granted and released", s)
	}
	// Again: a success that changes nothing.
	got, err = r.Release(ctx, "u1-a")
	if err != nil || got != (repo.ReleaseResult{Sid: c.ID}) {
		t.Errorf("Release(u1-a) again = %+v, %v; want success, not released now", got, err)
	}
	checkAudit(t, r, c.ID, 1)
	// Refused and unknown sales: a clear error, nothing changes.
	if got, err := r.Release(ctx, "u3-a"); err != nil || !errors.Is(got.Err, repo.ErrNotGranted) || got.Released {
		t.Errorf("Release(refused) = %+v, %v; want ErrNotGranted", got, err)
	}
	if got, err := r.Release(ctx, "nobody"); err != nil || !errors.Is(got.Err, repo.ErrNoSale) || got.Sid != 0 {
		t.Errorf("Release(unknown) = %+v, %v; want ErrNoSale", got, err)
	}
	checkAudit(t, r, c.ID, 1)

	// The unit is held for the return delay: still sold out, for at most that long.
	if _, err := r.Sell(ctx, c.ID, "u9-a", "9"); !errors.Is(err, repo.ErrSoldOut) {
		t.Errorf("right after the release: %v; want sold out (the unit is held)", err)
	}
	if out, validFor, err := r.SoldOut(ctx, c.ID); err != nil || !out || validFor <= 0 || validFor > repo.ReturnDelay {
		t.Errorf("SoldOut right after the release = %v for %v, %v; want sold out for at most %v", out, validFor, err, repo.ReturnDelay)
	}
	if got, err := r.Get(ctx, c.ID); err != nil || got.Left(time.Now()) != 0 || got.Held != 1 {
		t.Errorf("commodity = %+v, %v; want 1 held, 0 left", got, err)
	}
	// Then the unit is on sale again: a new buyer gets it, and then it is sold out again.
	// The released request id keeps its answer (granted) and takes nothing.
	testutil.Eventually(t, 5*time.Second, "the held unit on sale again", func() bool {
		out, _, err := r.SoldOut(ctx, c.ID)
		return err == nil && !out
	})
	sell(t, r, c.ID, "u4-a")
	if _, err := r.Sell(ctx, c.ID, "u5-a", "5"); !errors.Is(err, repo.ErrSoldOut) {
		t.Errorf("after the resale: %v; want sold out", err)
	}
	if _, err := r.Sell(ctx, c.ID, "u1-a", "1"); err != nil {
		t.Errorf("retry of the released sale: %v; want its old answer (granted)", err)
	}
	checkAudit(t, r, c.ID, 2)
	if a, _ := r.Audit(ctx, c.ID); a.Released != 1 {
		t.Errorf("audit released = %d; want 1", a.Released)
	}
}

// 100 concurrent releases of one request id give back one unit: one caller is told it
// released it, the others that it was released already.
func TestReleaseRaceSameRequestID(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	c := create(t, r, 10)
	for i := 1; i <= 5; i++ {
		sell(t, r, c.ID, fmt.Sprintf("u%d-a", i))
	}
	const n = 100
	res := make([]repo.ReleaseResult, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			res[i], errs[i] = r.Release(context.Background(), "u3-a")
		})
	}
	close(start)
	wg.Wait()
	now := 0
	for i := range n {
		if errs[i] != nil || res[i].Err != nil || res[i].Sid != c.ID {
			t.Fatalf("release %d = %+v, %v; want success", i, res[i], errs[i])
		}
		if res[i].Released {
			now++
		}
	}
	if now != 1 {
		t.Errorf("%d callers were told they released the unit; want 1", now)
	}
	checkAudit(t, r, c.ID, 4)
	if s := saleOf(t, d, "u3-a"); s != (saleRow{true, true}) {
		t.Errorf("stock_sale u3-a = %+v; want granted and released", s)
	}
}

// Overlapping batches, each naming the same sales in a different order and some twice, and
// sales of two commodities: every unit goes back once and no batch deadlocks.
func TestReleaseBatchConcurrentOverlapping(t *testing.T) {
	t.Parallel()
	r, _ := newRepoDB(t)
	a, b := create(t, r, 100), create(t, r, 100)
	var all []string
	for i := range 100 {
		c := a
		if i%2 == 1 {
			c = b
		}
		rid := fmt.Sprintf("u%d-a", 1000+i)
		sell(t, r, c.ID, rid)
		all = append(all, rid)
	}
	const batches = 20
	released := make([]int, batches)
	errs := make([]error, batches)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range batches {
		rids := make([]string, 0, len(all)+10)
		for j := range all {
			rids = append(rids, all[(j*7+k*13)%len(all)])
		}
		rids = append(rids, all[:10]...) // some twice in one batch
		wg.Go(func() {
			<-start
			res, err := r.ReleaseBatch(context.Background(), rids)
			errs[k] = err
			for i, x := range res {
				if x.Err != nil {
					errs[k] = fmt.Errorf("%s: %w", rids[i], x.Err)
				}
				if x.Released {
					released[k]++
				}
			}
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for k := range batches {
		if errs[k] != nil {
			t.Errorf("batch %d: %v", k, errs[k])
		}
		total += released[k]
	}
	if total != len(all) {
		t.Errorf("units released = %d; want %d, each once", total, len(all))
	}
	checkAudit(t, r, a.ID, 0)
	checkAudit(t, r, b.ID, 0)
}

// Releases racing with a crowd of new buyers of a sold-out commodity: every released unit
// is sold again exactly once, never more, and the batches do not deadlock.
func TestReleaseRacesWithSales(t *testing.T) {
	t.Parallel()
	r, _ := newRepoDB(t)
	c := create(t, r, 50)
	for i := range 50 {
		sell(t, r, c.ID, fmt.Sprintf("u%d-a", 1000+i))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var released, granted int
	for i := range 25 {
		wg.Go(func() {
			<-start
			res, err := r.Release(context.Background(), fmt.Sprintf("u%d-a", 1000+2*i))
			if err != nil || res.Err != nil || !res.Released {
				t.Errorf("release: %+v, %v", res, err)
				return
			}
			mu.Lock()
			released++
			mu.Unlock()
		})
	}
	for i := range 200 {
		wg.Go(func() {
			<-start
			rid := fmt.Sprintf("u%d-b", 5000+i)
			_, err := r.Sell(context.Background(), c.ID, rid, userOf(rid))
			switch {
			case err == nil:
				mu.Lock()
				granted++
				mu.Unlock()
			case !errors.Is(err, repo.ErrSoldOut):
				t.Errorf("sell %s: %v", rid, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if released != 25 || granted > 25 {
		t.Errorf("released %d, sold again %d; want 25 and at most 25", released, granted)
	}
	checkAudit(t, r, c.ID, int64(50-released+granted))
	t.Logf("%d released, %d sold again during the race", released, granted)
}

// What SoldOut promises holds: once it says "sold out for v", no unit is bought before v
// has passed, however soon a unit is given back.
func TestSoldOutHoldsForItsTime(t *testing.T) {
	t.Parallel()
	r, _ := newRepoDB(t)
	ctx := context.Background()
	c := create(t, r, 1)
	sell(t, r, c.ID, "u1-a")
	start := time.Now()
	out, validFor, err := r.SoldOut(ctx, c.ID)
	if err != nil || !out || validFor <= 0 {
		t.Fatalf("SoldOut = %v for %v, %v; want sold out", out, validFor, err)
	}
	if _, err := r.Release(ctx, "u1-a"); err != nil {
		t.Fatal(err)
	}
	var bought time.Time
	for i := 0; bought.IsZero(); i++ {
		rid := fmt.Sprintf("u%d-b", 100+i)
		switch _, err := r.Sell(ctx, c.ID, rid, userOf(rid)); {
		case err == nil:
			bought = time.Now()
		case !errors.Is(err, repo.ErrSoldOut):
			t.Fatal(err)
		case time.Since(start) > 10*time.Second:
			t.Fatal("the unit given back was not on sale again within 10 s")
		}
	}
	if bought.Sub(start) < validFor {
		t.Errorf("a unit was bought %v after SoldOut said sold out for %v", bought.Sub(start), validFor)
	}
}

// heldUntil reads commodity id's hold: its units and when it ends.
func heldUntil(t *testing.T, d *db.DB, id int64) (int64, time.Time) {
	t.Helper()
	var row struct {
		Held      int64
		HeldUntil time.Time
	}
	if err := d.Raw(`SELECT held, held_until FROM stock WHERE id = ?`, id).Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	return row.Held, row.HeldUntil
}

// A unit given back while others are held joins their hold: returns that keep coming do
// not keep each other off sale, and both units are on sale again when the first hold ends.
func TestReturnsJoinTheHold(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	r.SetReturnDelay(time.Hour) // the first hold is still on when the second unit comes back
	ctx := context.Background()
	c := create(t, r, 2)
	sell(t, r, c.ID, "u1-a")
	sell(t, r, c.ID, "u2-a")
	if _, err := r.Release(ctx, "u1-a"); err != nil {
		t.Fatal(err)
	}
	_, first := heldUntil(t, d, c.ID)
	if _, err := r.Release(ctx, "u2-a"); err != nil {
		t.Fatal(err)
	}
	held, until := heldUntil(t, d, c.ID)
	if held != 2 || !until.Equal(first) {
		t.Errorf("after two returns: %d held until %v; want 2 held until the first hold's end %v", held, until, first)
	}
	if out, validFor, err := r.SoldOut(ctx, c.ID); err != nil || !out || validFor > time.Until(first)+time.Second {
		t.Errorf("SoldOut = %v for %v, %v; want sold out for no longer than the hold (%v)", out, validFor, err, time.Until(first))
	}
}

// SoldOut waits for a release that has changed the row and not yet committed, and then
// counts its hold: read past it, it would promise a whole delay, past the unit's return.
func TestSoldOutWaitsForAnOpenRelease(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	const delay = 500 * time.Millisecond
	r.SetReturnDelay(delay)
	ctx := context.Background()
	c := create(t, r, 1)
	sell(t, r, c.ID, "u1-a")
	// A release, as ReleaseBatch writes it, left open.
	tx := d.Begin()
	if err := tx.Exec(`UPDATE stock_sale SET released = true WHERE request_id = 'u1-a'`).Error; err != nil {
		t.Fatal(err)
	}
	if err := tx.Exec(`UPDATE stock SET sale = sale - 1, held = 1, held_until = clock_timestamp() + interval '500 milliseconds'
		WHERE id = ?`, c.ID).Error; err != nil {
		t.Fatal(err)
	}
	type answer struct {
		out      bool
		validFor time.Duration
		err      error
	}
	got := make(chan answer, 1)
	go func() {
		out, validFor, err := r.SoldOut(ctx, c.ID)
		got <- answer{out, validFor, err}
	}()
	testutil.Eventually(t, 10*time.Second, "SoldOut to wait for the open release's lock", func() bool {
		var n int64
		d.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%FOR SHARE%'`).Scan(&n)
		return n == 1
	})
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || !a.out || a.validFor <= 0 || a.validFor >= delay {
		t.Errorf("SoldOut = %v for %v, %v; want sold out for less than the %v hold it waited for", a.out, a.validFor, a.err, delay)
	}
}

// A snapshot ends with the sale window: after it, a buyer is told "ended", not "sold out".
func TestSoldOutEndsWithTheWindow(t *testing.T) {
	t.Parallel()
	r, _ := newRepoDB(t)
	r.SetReturnDelay(time.Hour)
	ctx := context.Background()
	end := time.Now().Add(2 * time.Second)
	c, err := r.Create(ctx, repo.Commodity{Name: "phone", Count: 1, EndTime: &end})
	if err != nil {
		t.Fatal(err)
	}
	sell(t, r, c.ID, "u1-a")
	if out, validFor, err := r.SoldOut(ctx, c.ID); err != nil || !out || validFor > time.Until(end)+100*time.Millisecond {
		t.Errorf("SoldOut = %v for %v, %v; want sold out until the window ends, in %v", out, validFor, err, time.Until(end))
	}
}
