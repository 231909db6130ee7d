package repo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/payment-srv/migrations"
	"secbuy/payment-srv/repo"
)

func newRepo(t *testing.T) (*repo.Repo, *db.DB) {
	t.Helper()
	d := dbtest.New(t, "payment", migrations.FS)
	return repo.New(d), d
}

func create(t *testing.T, r *repo.Repo, orderID, commodityID, userID int64) {
	t.Helper()
	created, err := r.Create(context.Background(), repo.Payment{Sid: orderID, CommodityID: commodityID, Buyer: fmt.Sprint(userID), Name: "goods"})
	if err != nil || !created {
		t.Fatalf("Create(order %d) = %v, %v; want true, nil", orderID, created, err)
	}
}

func row(t *testing.T, d *db.DB, orderID int64) repo.Payment {
	t.Helper()
	var p repo.Payment
	if err := d.Raw("SELECT * FROM payments WHERE sid = ?", orderID).Scan(&p).Error; err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateConcurrentSameOrder(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	const n = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, failed := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := r.Create(context.Background(), repo.Payment{Sid: 42, CommodityID: 7, Buyer: "9", Name: "goods"})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				t.Errorf("Create: %v", err)
			}
			if ok {
				created++
			}
		}()
	}
	close(start)
	wg.Wait()
	var rows int64
	if err := d.Raw("SELECT count(*) FROM payments WHERE sid = 42").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if rows != 1 || created != 1 || failed != 0 {
		t.Errorf("rows = %d, created = %d, failed = %d; want 1, 1, 0", rows, created, failed)
	}
	if p := row(t, d, 42); p.State != repo.StateUnpaid || p.PaidTime != nil || p.Buyer != "9" || p.CommodityID != 7 {
		t.Errorf("payment = %+v; want unpaid for user 9, commodity 7", p)
	}
}

func TestCreateBatch(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	create(t, r, 1, 7, 100)
	if n, err := r.CreateBatch(context.Background(), nil); n != 0 || err != nil {
		t.Errorf("CreateBatch(nil) = %d, %v; want 0, nil", n, err)
	}
	batch := []repo.Payment{
		{Sid: 3, CommodityID: 7, Buyer: "3", Name: "goods"},
		{Sid: 1, CommodityID: 7, Buyer: "999", Name: "other"}, // exists: left as it is
		{Sid: 2, CommodityID: 7, Buyer: "2", Name: "goods"},
		{Sid: 3, CommodityID: 7, Buyer: "333", Name: "again"}, // twice in the batch: the first wins
		{Sid: 2, CommodityID: 7, Buyer: "2", Name: "goods"},
	}
	n, err := r.CreateBatch(context.Background(), batch)
	if err != nil || n != 2 {
		t.Fatalf("CreateBatch = %d, %v; want 2, nil", n, err)
	}
	if batch[0].Sid != 3 || batch[1].Sid != 1 {
		t.Errorf("CreateBatch reordered its argument: %+v", batch)
	}
	for _, want := range []repo.Payment{{Sid: 1, Buyer: "100"}, {Sid: 2, Buyer: "2", Name: "goods"}, {Sid: 3, Buyer: "3", Name: "goods"}} {
		p := row(t, d, want.Sid)
		if p.Buyer != want.Buyer || (want.Name != "" && p.Name != want.Name) || p.State != repo.StateUnpaid || p.CommodityID != 7 {
			t.Errorf("payment of order %d = %+v; want user %s, name %q, unpaid", want.Sid, p, want.Buyer, want.Name)
		}
	}
	if n, err := r.CreateBatch(context.Background(), batch); n != 0 || err != nil {
		t.Errorf("CreateBatch again = %d, %v; want 0, nil", n, err)
	}
	var rows int64
	if err := d.Raw("SELECT count(*) FROM payments").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if rows != 3 {
		t.Errorf("rows = %d; want 3", rows)
	}
}

// Concurrent batches of the same orders in different orders neither deadlock nor create
// an order twice.
func TestCreateBatchConcurrentOverlapping(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	const orders, batches = 500, 8
	start := make(chan struct{})
	var wg sync.WaitGroup
	var created atomic.Int64
	for i := 0; i < batches; i++ {
		ps := make([]repo.Payment, orders)
		for j := range ps {
			ps[j] = repo.Payment{Sid: int64(j + 1), CommodityID: 7, Buyer: fmt.Sprint(int64(j + 1))}
		}
		rand.Shuffle(len(ps), func(a, b int) { ps[a], ps[b] = ps[b], ps[a] })
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n, err := r.CreateBatch(context.Background(), ps)
			if err != nil {
				t.Errorf("CreateBatch: %v", err)
			}
			created.Add(n)
		}()
	}
	close(start)
	wg.Wait()
	var rows int64
	if err := d.Raw("SELECT count(*) FROM payments").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if rows != orders || created.Load() != orders {
		t.Errorf("rows = %d, created = %d; want %d, %d", rows, created.Load(), orders, orders)
	}
}

func TestPayConcurrentSameOrder(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	create(t, r, 5, 1, 77)
	const n = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]repo.Payment, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], errs[i] = r.Pay(context.Background(), 5, "77")
		}()
	}
	close(start)
	wg.Wait()
	stored := row(t, d, 5)
	if stored.State != repo.StatePaid || stored.PaidTime == nil {
		t.Fatalf("stored payment = %+v; want paid with a paid_time", stored)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Pay #%d: %v; want success", i, errs[i])
		}
		if got[i].State != repo.StatePaid || got[i].PaidTime == nil || !got[i].PaidTime.Equal(*stored.PaidTime) {
			t.Fatalf("Pay #%d = %+v; want paid at %v", i, got[i], *stored.PaidTime)
		}
	}
}

func TestPayAgainChangesNothing(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	create(t, r, 6, 1, 10)
	first, err := r.Pay(context.Background(), 6, "10")
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Pay(context.Background(), 6, "10")
	if err != nil {
		t.Fatalf("second Pay: %v; want success", err)
	}
	if again.ID != first.ID || again.State != repo.StatePaid || again.PaidTime == nil || !again.PaidTime.Equal(*first.PaidTime) {
		t.Errorf("second Pay = %+v; want the first one unchanged %+v", again, first)
	}
	if p := row(t, d, 6); !p.PaidTime.Equal(*first.PaidTime) {
		t.Errorf("paid_time = %v; want the first %v", p.PaidTime, first.PaidTime)
	}
}

func TestPayOutcomes(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	create(t, r, 1, 3, 100) // unpaid, user 100
	create(t, r, 2, 3, 200) // expired, user 200
	if err := d.Exec("UPDATE payments SET state = 2 WHERE sid = 2").Error; err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		order, user  int64
		want         error
		wantStateOf1 int16
		wantStateOf2 int16
	}{
		{"someone else's unpaid order", 1, 200, repo.ErrNotYours, repo.StateUnpaid, repo.StateExpired},
		{"someone else's expired order", 2, 100, repo.ErrNotYours, repo.StateUnpaid, repo.StateExpired},
		{"unknown order", 999, 100, repo.ErrNotFound, repo.StateUnpaid, repo.StateExpired},
		{"own expired order", 2, 200, repo.ErrExpired, repo.StateUnpaid, repo.StateExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Pay(context.Background(), tc.order, fmt.Sprint(tc.user))
			if !errors.Is(err, tc.want) {
				t.Errorf("Pay(%d, %d) error = %v; want %v", tc.order, tc.user, err, tc.want)
			}
			if p.ID != 0 {
				t.Errorf("Pay(%d, %d) returned payment %+v; want none", tc.order, tc.user, p)
			}
			if p1 := row(t, d, 1); p1.State != tc.wantStateOf1 || p1.PaidTime != nil {
				t.Errorf("order 1 = %+v; want unchanged", p1)
			}
			if p2 := row(t, d, 2); p2.State != tc.wantStateOf2 || p2.PaidTime != nil {
				t.Errorf("order 2 = %+v; want unchanged", p2)
			}
		})
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	r, _ := newRepo(t)
	create(t, r, 8, 4, 300)
	tests := []struct {
		name        string
		order, user int64
		want        error
	}{
		{"own", 8, 300, nil},
		{"someone else's", 8, 301, repo.ErrNotYours},
		{"unknown", 9, 300, repo.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Get(context.Background(), tc.order, fmt.Sprint(tc.user))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Get(%d, %d) error = %v; want %v", tc.order, tc.user, err, tc.want)
			}
			if err == nil && (p.Sid != 8 || p.Buyer != "300" || p.CommodityID != 4 || p.Name != "goods" || p.CreateTime.IsZero()) {
				t.Errorf("Get = %+v; want order 8 of user 300, commodity 4", p)
			}
		})
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	for order := int64(1); order <= 5; order++ {
		create(t, r, order, 11, order)
	}
	create(t, r, 6, 12, 6) // another commodity
	if _, err := r.Pay(context.Background(), 1, "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pay(context.Background(), 2, "2"); err != nil {
		t.Fatal(err)
	}
	if err := d.Exec("UPDATE payments SET state = 2 WHERE sid = 3").Error; err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		commodity int64
		want      repo.Audit
	}{
		{11, repo.Audit{Payments: 5, Unpaid: 2, Paid: 2, Expired: 1, OrderIDSum: 15, Live: 4, LiveOrderIDSum: 12}},
		{12, repo.Audit{Payments: 1, Unpaid: 1, OrderIDSum: 6, Live: 1, LiveOrderIDSum: 6}},
		{13, repo.Audit{}},
	}
	for _, tc := range tests {
		got, err := r.Audit(context.Background(), tc.commodity)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Audit(%d) = %+v; want %+v", tc.commodity, got, tc.want)
		}
	}
}

func BenchmarkCreateBatch256(b *testing.B) {
	d := dbtest.New(b, "payment", migrations.FS)
	r := repo.New(d)
	ps := make([]repo.Payment, 256)
	sid := int64(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ps {
			sid++
			ps[j] = repo.Payment{Sid: sid, CommodityID: 7, Buyer: fmt.Sprint(sid), Name: "goods"}
		}
		if _, err := r.CreateBatch(context.Background(), ps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "rows/s")
}
