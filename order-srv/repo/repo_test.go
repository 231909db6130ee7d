package repo_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/basic/testutil"
	"secbuy/order-srv/migrations"
	"secbuy/order-srv/repo"
	eventpb "secbuy/proto/events"
)

func newRepo(t *testing.T) (*repo.Repo, *db.DB) {
	t.Helper()
	d := dbtest.New(t, "order", migrations.FS)
	return repo.New(d), d
}

func count(t *testing.T, d *db.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := d.Raw(query, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func insert(t *testing.T, r *repo.Repo, sid, user int64, req string) repo.Order {
	t.Helper()
	o, isNew, err := r.Insert(context.Background(), sid, fmt.Sprint(user), req)
	if err != nil || !isNew {
		t.Fatalf("Insert(%d, %d, %q) = new %v, err %v; want a new order", sid, user, req, isNew, err)
	}
	return o
}

// createOrders makes n created orders of commodity 7, for users firstUser, firstUser+1,
// ..., each with request id "<user>:a", and returns them in that order.
func createOrders(t *testing.T, r *repo.Repo, firstUser int64, n int) []repo.Order {
	t.Helper()
	os := make([]repo.Order, n)
	for i := range os {
		u := firstUser + int64(i)
		os[i] = insert(t, r, 7, u, fmt.Sprintf("%d:a", u))
		if _, err := r.MarkCreated(context.Background(), os[i].ID, "phone"); err != nil {
			t.Fatal(err)
		}
	}
	return os
}

func orderIDs(os []repo.Order) []int64 {
	ids := make([]int64, len(os))
	for i, o := range os {
		ids[i] = o.ID
	}
	return ids
}

func TestInsertOneLiveOrderPerUser(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	const n = 300
	var mu sync.Mutex
	news, bought := 0, 0
	liveIDs := map[int64]bool{}
	testutil.Race(n, func(i int) {
		o, isNew, err := r.Insert(context.Background(), 7, "42", fmt.Sprintf("42:req-%d", i))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil && isNew:
			news++
		case errors.Is(err, repo.ErrAlreadyBought):
			bought++
		default:
			t.Errorf("Insert %d: new %v, err %v", i, isNew, err)
		}
		liveIDs[o.ID] = true
	})
	if news != 1 || bought != n-1 {
		t.Errorf("new orders %d, already bought %d; want 1 and %d", news, bought, n-1)
	}
	if len(liveIDs) != 1 {
		t.Errorf("callers saw %d different orders; want the one live order", len(liveIDs))
	}
	if got := count(t, d, "SELECT count(*) FROM orders"); got != 1 {
		t.Errorf("orders rows = %d; want 1", got)
	}
}

func TestInsertSameRequestID(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	const n = 100
	var mu sync.Mutex
	news := 0
	ids := map[int64]bool{}
	testutil.Race(n, func(int) {
		o, isNew, err := r.Insert(context.Background(), 7, "42", "42:same")
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("Insert: %v", err)
			return
		}
		if isNew {
			news++
		}
		ids[o.ID] = true
	})
	if news != 1 || len(ids) != 1 {
		t.Errorf("new %d, distinct orders %d; want 1 and 1", news, len(ids))
	}
	if got := count(t, d, "SELECT count(*) FROM orders"); got != 1 {
		t.Errorf("orders rows = %d; want 1", got)
	}
}

func TestInsertOutcomes(t *testing.T) {
	t.Parallel()
	r, _ := newRepo(t)
	ctx := context.Background()
	first := insert(t, r, 7, 42, "42:a")
	if first.State != repo.Pending || first.Sid != 7 || first.Buyer != "42" || first.RequestID != "42:a" {
		t.Fatalf("new order = %+v", first)
	}
	tests := []struct {
		name    string
		sid     int64
		user    int64
		req     string
		wantErr error
		wantID  int64
	}{
		{"same request", 7, 42, "42:a", nil, first.ID},
		{"other request, live order", 7, 42, "42:b", repo.ErrAlreadyBought, first.ID},
		{"request reused by another user", 7, 43, "42:a", repo.ErrRequestReused, 0},
		{"request reused for another commodity", 8, 42, "42:a", repo.ErrRequestReused, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, isNew, err := r.Insert(ctx, tc.sid, fmt.Sprint(tc.user), tc.req)
			if !errors.Is(err, tc.wantErr) || isNew || o.ID != tc.wantID {
				t.Errorf("Insert = id %d, new %v, err %v; want id %d, not new, err %v", o.ID, isNew, err, tc.wantID, tc.wantErr)
			}
		})
	}
	// A failed order is not live: the user may try again with a new request id.
	if _, err := r.MarkFailed(ctx, first.ID, "SOLD_OUT"); err != nil {
		t.Fatal(err)
	}
	again := insert(t, r, 7, 42, "42:c")
	if again.ID == first.ID {
		t.Errorf("new order after a failed one reused id %d", first.ID)
	}
	if o, _, err := r.Insert(ctx, 7, "42", "42:a"); err != nil || o.State != repo.Failed || o.Reason != "SOLD_OUT" {
		t.Errorf("replay of failed request = %+v, %v; want it failed with its reason", o, err)
	}
}

func TestMarkCreatedRacedWritesOneEvent(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	o := insert(t, r, 7, 42, "42:a")
	testutil.Race(50, func(int) {
		got, err := r.MarkCreated(context.Background(), o.ID, "phone")
		if err != nil || got.State != repo.Created || got.Name != "phone" {
			t.Errorf("MarkCreated = %+v, %v; want created", got, err)
		}
	})
	if got := count(t, d, "SELECT count(*) FROM outbox"); got != 1 {
		t.Fatalf("outbox rows = %d; want 1", got)
	}
	var row struct {
		MsgID   string
		Payload []byte
	}
	if err := d.Raw("SELECT msg_id, payload FROM outbox").Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	var ev eventpb.PayEvent
	if err := eventpb.Unmarshal(row.Payload, &ev); err != nil {
		t.Fatalf("payload %s: %v", row.Payload, err)
	}
	if row.MsgID != eventpb.PayMsgID(o.ID) || ev.OrderId != o.ID || ev.CommodityId != 7 || ev.UserId != 42 ||
		ev.Name != "phone" || ev.CreateTime != o.CreateTime.Unix() {
		t.Errorf("outbox row = %s %v; want the event of order %+v", row.MsgID, &ev, o)
	}
}

func TestFinishedOrdersDoNotChange(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	created := insert(t, r, 7, 1, "1:a")
	if _, err := r.MarkCreated(ctx, created.ID, "phone"); err != nil {
		t.Fatal(err)
	}
	if o, err := r.MarkFailed(ctx, created.ID, "SOLD_OUT"); err != nil || o.State != repo.Created || o.Reason != "" {
		t.Errorf("MarkFailed after MarkCreated = %+v, %v; want it created, unchanged", o, err)
	}
	failed := insert(t, r, 7, 2, "2:a")
	if _, err := r.MarkFailed(ctx, failed.ID, "ENDED"); err != nil {
		t.Fatal(err)
	}
	if o, err := r.MarkCreated(ctx, failed.ID, "phone"); err != nil || o.State != repo.Failed || o.Reason != "ENDED" {
		t.Errorf("MarkCreated after MarkFailed = %+v, %v; want it failed, unchanged", o, err)
	}
	if got := count(t, d, "SELECT count(*) FROM outbox"); got != 1 {
		t.Errorf("outbox rows = %d; want 1", got)
	}
	for name, f := range map[string]func() error{
		"Get":         func() error { _, err := r.Get(ctx, 999); return err },
		"MarkCreated": func() error { _, err := r.MarkCreated(ctx, 999, "x"); return err },
		"MarkFailed":  func() error { _, err := r.MarkFailed(ctx, 999, "x"); return err },
	} {
		if err := f(); !errors.Is(err, repo.ErrNotFound) {
			t.Errorf("%s of unknown order: err %v; want ErrNotFound", name, err)
		}
	}
}

func TestPendingAndAudit(t *testing.T) {
	t.Parallel()
	r, _ := newRepo(t)
	ctx := context.Background()
	live := createOrders(t, r, 1, 3)
	pending := insert(t, r, 7, 4, "4:a")
	failed := insert(t, r, 7, 5, "5:a")
	if _, err := r.MarkFailed(ctx, failed.ID, "SOLD_OUT"); err != nil {
		t.Fatal(err)
	}
	other := insert(t, r, 8, 1, "1:b")
	if _, err := r.MarkCreated(ctx, other.ID, "car"); err != nil {
		t.Fatal(err)
	}

	a, err := r.Audit(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := repo.Audit{Live: 3, Pending: 1, Failed: 1, UsersWithTwoLive: 0,
		LiveIDSum: live[0].ID + live[1].ID + live[2].ID, Unsent: 4}
	if a != want {
		t.Errorf("Audit = %+v; want %+v", a, want)
	}

	got, err := r.Pending(ctx, 0, 0, 10)
	if err != nil || len(got) != 1 || got[0].ID != pending.ID {
		t.Errorf("Pending(0) = %v, %v; want order %d", got, err, pending.ID)
	}
	if got, err := r.Pending(ctx, time.Hour, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("Pending(1h) = %v, %v; want none", got, err)
	}
	if got, err := r.Pending(ctx, 0, pending.ID, 10); err != nil || len(got) != 0 {
		t.Errorf("Pending after %d = %v, %v; want none", pending.ID, got, err)
	}
}

func TestRelayMarksOnlyAcknowledged(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	ids := orderIDs(createOrders(t, r, 1, 5))
	// A second relay is turned away while the first holds the lock.
	inside, release := make(chan struct{}), make(chan struct{})
	var got []repo.Event
	done := make(chan error, 1)
	go func() {
		_, err := r.Relay(ctx, 3, func(evs []repo.Event) ([]int64, error) {
			got = evs
			close(inside)
			<-release
			return []int64{evs[0].ID, evs[2].ID}, errors.New("one lost")
		})
		done <- err
	}()
	<-inside
	n, err := r.Relay(ctx, 10, func([]repo.Event) ([]int64, error) {
		t.Error("second relay published while the first held the lock")
		return nil, nil
	})
	if n != 0 || err != nil {
		t.Errorf("locked out relay = %d, %v; want 0, nil", n, err)
	}
	close(release)
	if err := <-done; err == nil || err.Error() != "one lost" {
		t.Errorf("relay err = %v; want publish's error", err)
	}
	if len(got) != 3 || got[0].MsgID != eventpb.PayMsgID(ids[0]) || got[1].MsgID != eventpb.PayMsgID(ids[1]) || got[2].MsgID != eventpb.PayMsgID(ids[2]) {
		t.Errorf("batch = %v; want the first three events in id order", got)
	}
	var unsent []string
	if err := d.Raw("SELECT msg_id FROM outbox WHERE sent_time IS NULL ORDER BY id").Scan(&unsent).Error; err != nil {
		t.Fatal(err)
	}
	want := []string{eventpb.PayMsgID(ids[1]), eventpb.PayMsgID(ids[3]), eventpb.PayMsgID(ids[4])}
	if fmt.Sprint(unsent) != fmt.Sprint(want) {
		t.Errorf("unsent = %v; want %v", unsent, want)
	}
}
