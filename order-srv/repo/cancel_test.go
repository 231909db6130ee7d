package repo_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"secbuy/basic/testutil"
	"secbuy/order-srv/repo"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	created := insert(t, r, 7, 1, "1:a")
	if _, err := r.MarkCreated(ctx, created.ID, "phone"); err != nil {
		t.Fatal(err)
	}
	pending := insert(t, r, 7, 2, "2:a")
	failed := insert(t, r, 7, 3, "3:a")
	if _, err := r.MarkFailed(ctx, failed.ID, "SOLD_OUT"); err != nil {
		t.Fatal(err)
	}

	got, err := r.Cancel(ctx, []int64{created.ID, pending.ID, failed.ID, 999}, repo.ExpiredReason)
	if err != nil {
		t.Fatal(err)
	}
	if o := got[created.ID]; o.State != repo.Cancelled || o.Reason != repo.ExpiredReason || o.RequestID != "1:a" {
		t.Errorf("created order after Cancel = %+v; want cancelled, payment expired", o)
	}
	if got[pending.ID].State != repo.Pending || got[failed.ID].State != repo.Failed {
		t.Errorf("pending and failed orders after Cancel = %s, %s; want unchanged", got[pending.ID].State, got[failed.ID].State)
	}
	if _, ok := got[999]; ok || len(got) != 3 {
		t.Errorf("Cancel returned %d orders; want the 3 that exist", len(got))
	}
	// Again: the order is returned as it is, nothing changes.
	again, err := r.Cancel(ctx, []int64{created.ID}, "other")
	if err != nil || again[created.ID].State != repo.Cancelled || again[created.ID].Reason != repo.ExpiredReason {
		t.Errorf("Cancel again = %+v, %v; want cancelled as before", again[created.ID], err)
	}
	a, err := r.Audit(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if a.Live != 0 || a.Cancelled != 1 || a.Pending != 1 || a.Failed != 1 {
		t.Errorf("audit = %+v; want live 0, cancelled 1, pending 1, failed 1", a)
	}
	// A cancelled order is not live: its user may buy the commodity again, with a new
	// request id; the old request id keeps its cancelled order.
	if _, isNew, err := r.Insert(ctx, 7, "1", "1:b"); err != nil || !isNew {
		t.Errorf("user 1 buying again = new %v, %v; want a new order", isNew, err)
	}
	if o, isNew, err := r.Insert(ctx, 7, "1", "1:a"); err != nil || isNew || o.State != repo.Cancelled {
		t.Errorf("retry of the cancelled request = %+v, new %v, %v; want the cancelled order", o, isNew, err)
	}
	if _, _, err := r.Insert(ctx, 7, "1", "1:c"); !errors.Is(err, repo.ErrAlreadyBought) {
		t.Errorf("a third order of user 1 = %v; want already bought", err)
	}
	if n := count(t, d, "SELECT count(*) FROM orders WHERE user_id = '1'"); n != 2 {
		t.Errorf("orders of user 1 = %d; want 2", n)
	}
}

func TestCancelConcurrent(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	ids := orderIDs(createOrders(t, r, 1, 20))
	var failures atomic.Int64
	testutil.Race(50, func(i int) {
		// Overlapping sets in different orders.
		set := append(append([]int64{}, ids[i%20:]...), ids[:i%20]...)
		m, err := r.Cancel(ctx, set, repo.ExpiredReason)
		if err != nil || len(m) != 20 {
			failures.Add(1)
		}
	})
	if failures.Load() != 0 {
		t.Errorf("%d Cancel calls failed", failures.Load())
	}
	if n := count(t, d, "SELECT count(*) FROM orders WHERE state = 'cancelled'"); n != 20 {
		t.Errorf("cancelled orders = %d; want 20", n)
	}
}
