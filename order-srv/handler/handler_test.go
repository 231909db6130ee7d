package handler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/basic/testutil"
	"secbuy/order-srv/handler"
	"secbuy/order-srv/migrations"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/repo"
	"secbuy/proto/outcome"
	stockpb "secbuy/stock-srv/proto/stock"
)

// fakeStock is a StockService whose Sell answers what sell says, after delay, and whose
// SoldOut answers soldOut.
type fakeStock struct {
	stockpb.StockService // other methods are not called
	mu                   sync.Mutex
	sell                 func(*stockpb.SellRequest) (*stockpb.Response, error)
	delay                time.Duration
	calls                atomic.Int64
	soldOut              *stockpb.SoldOutResponse
}

func (f *fakeStock) SoldOut(context.Context, *stockpb.Request, ...client.CallOption) (*stockpb.SoldOutResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.soldOut == nil {
		return nil, merrors.Timeout("go.micro.client", "request timeout")
	}
	return f.soldOut, nil
}

func (f *fakeStock) Sell(ctx context.Context, in *stockpb.SellRequest, _ ...client.CallOption) (*stockpb.Response, error) {
	f.calls.Add(1)
	f.mu.Lock()
	sell, delay := f.sell, f.delay
	f.mu.Unlock()
	time.Sleep(delay)
	return sell(in)
}

// SellBatch answers each item with Sell; an error for any item fails the whole call, as a
// failed RPC would.
func (f *fakeStock) SellBatch(ctx context.Context, in *stockpb.SellBatchRequest, _ ...client.CallOption) (*stockpb.SellBatchResponse, error) {
	out := &stockpb.SellBatchResponse{}
	for _, it := range in.Items {
		r, err := f.Sell(ctx, it)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, r)
	}
	return out, nil
}

func (f *fakeStock) set(sell func(*stockpb.SellRequest) (*stockpb.Response, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sell = sell
}

func grant(in *stockpb.SellRequest) (*stockpb.Response, error) {
	return &stockpb.Response{Success: true, Commodity: &stockpb.Commodity{Id: in.Id, Name: "phone", Count: 10, Sale: 1}}, nil
}

func refuse(reason outcome.Reason) func(*stockpb.SellRequest) (*stockpb.Response, error) {
	return func(*stockpb.SellRequest) (*stockpb.Response, error) {
		return &stockpb.Response{Error: outcome.Refuse(reason)}, nil
	}
}

func down(*stockpb.SellRequest) (*stockpb.Response, error) {
	return nil, merrors.Timeout("go.micro.client", "request timeout")
}

type env struct {
	h     *handler.Order
	d     *db.DB
	stock *fakeStock
	pokes atomic.Int64
}

func newEnv(t testing.TB, sell func(*stockpb.SellRequest) (*stockpb.Response, error)) *env {
	t.Helper()
	e := &env{d: dbtest.New(t, "order", migrations.FS), stock: &fakeStock{sell: sell}}
	e.h = handler.New(repo.New(e.d), e.stock, func() { e.pokes.Add(1) }, 3*time.Second)
	t.Cleanup(e.h.Close)
	return e
}

// create makes an order, and waits until the finisher has recorded stock-srv's answer.
func (e *env) create(t *testing.T, sid, user int64, req string) *pb.Response {
	t.Helper()
	var out pb.Response
	if err := e.h.CreateOrder(context.Background(), &pb.CreateRequest{Sid: sid, UserId: user, RequestId: req}, &out); err != nil {
		t.Fatalf("CreateOrder(%d, %d, %q): %v", sid, user, req, err)
	}
	e.settle(t)
	return &out
}

// settle waits until the finisher has recorded every answer handed to it.
func (e *env) settle(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "the finisher", e.h.Finished)
}

func (e *env) count(t *testing.T, query string) int64 {
	t.Helper()
	var n int64
	if err := e.d.Raw(query).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateOrderBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	tests := []struct {
		name string
		in   *pb.CreateRequest
	}{
		{"zero sid", &pb.CreateRequest{Sid: 0, UserId: 1, RequestId: "r"}},
		{"negative sid", &pb.CreateRequest{Sid: -7, UserId: 1, RequestId: "r"}},
		{"zero user", &pb.CreateRequest{Sid: 1, UserId: 0, RequestId: "r"}},
		{"negative user", &pb.CreateRequest{Sid: 1, UserId: -1, RequestId: "r"}},
		{"empty request id", &pb.CreateRequest{Sid: 1, UserId: 1, RequestId: ""}},
		{"request id too long", &pb.CreateRequest{Sid: 1, UserId: 1, RequestId: strings.Repeat("x", 129)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out pb.Response
			err := e.h.CreateOrder(context.Background(), tc.in, &out)
			if err != nil || out.Success || out.Error.GetReason() != outcome.Reason_INVALID_INPUT || out.Order != nil {
				t.Errorf("CreateOrder = %v, %v; want INVALID_INPUT and no order", &out, err)
			}
		})
	}
	if n := e.count(t, "SELECT count(*) FROM orders"); n != 0 {
		t.Errorf("orders rows = %d; want 0", n)
	}
	if n := e.stock.calls.Load(); n != 0 {
		t.Errorf("Sell called %d times; want 0", n)
	}
}

func TestCreateOrderOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		sell        func(*stockpb.SellRequest) (*stockpb.Response, error)
		wantReason  outcome.Reason // REASON_UNSPECIFIED for success
		wantState   string
		wantFailure outcome.Reason
		wantEvents  int64
		finished    bool
	}{
		{"granted", grant, 0, repo.Created, 0, 1, true},
		{"sold out", refuse(outcome.Reason_SOLD_OUT), outcome.Reason_SOLD_OUT, repo.Failed, outcome.Reason_SOLD_OUT, 0, true},
		{"not started", refuse(outcome.Reason_NOT_STARTED), outcome.Reason_NOT_STARTED, repo.Failed, outcome.Reason_NOT_STARTED, 0, true},
		{"ended", refuse(outcome.Reason_ENDED), outcome.Reason_ENDED, repo.Failed, outcome.Reason_ENDED, 0, true},
		{"unknown commodity", refuse(outcome.Reason_COMMODITY_NOT_FOUND), outcome.Reason_COMMODITY_NOT_FOUND, repo.Failed, outcome.Reason_COMMODITY_NOT_FOUND, 0, true},
		{"stock down", down, outcome.Reason_ORDER_PENDING, repo.Pending, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.sell)
			check := func(out *pb.Response) {
				t.Helper()
				o := out.Order
				if out.Success != (tc.wantReason == 0) || out.Error.GetReason() != tc.wantReason ||
					out.Error != nil && out.Error.Code != int32(tc.wantReason.Status()) {
					t.Errorf("answer = success %v, error %v; want %s", out.Success, out.Error, tc.wantReason)
				}
				if o == nil || o.Id == 0 || o.Sid != 7 || o.UserId != 42 || o.RequestId != "42:k" || o.State != tc.wantState ||
					o.Failure != tc.wantFailure || o.CreateTime == 0 {
					t.Errorf("order = %v; want state %s, failure %s", o, tc.wantState, tc.wantFailure)
				}
				if tc.wantState == repo.Created && o.GetName() != "phone" {
					t.Errorf("created order name = %q; want the commodity's", o.GetName())
				}
			}
			first := e.create(t, 7, 42, "42:k")
			check(first)
			if n := e.stock.calls.Load(); n != 1 {
				t.Errorf("Sell called %d times; want 1", n)
			}
			again := e.create(t, 7, 42, "42:k")
			check(again)
			if again.Order.GetId() != first.Order.GetId() {
				t.Errorf("retry got order %d; want %d", again.Order.GetId(), first.Order.GetId())
			}
			wantCalls := int64(1)
			if !tc.finished {
				wantCalls = 2 // a pending order asks stock-srv again
			}
			if n := e.stock.calls.Load(); n != wantCalls {
				t.Errorf("Sell called %d times after the retry; want %d", n, wantCalls)
			}
			if n := e.count(t, "SELECT count(*) FROM orders"); n != 1 {
				t.Errorf("orders rows = %d; want 1", n)
			}
			if n := e.count(t, "SELECT count(*) FROM outbox"); n != tc.wantEvents {
				t.Errorf("outbox rows = %d; want %d", n, tc.wantEvents)
			}
			if n := e.pokes.Load(); n != tc.wantEvents {
				t.Errorf("relay poked %d times; want %d", n, tc.wantEvents)
			}
		})
	}
}

func TestPendingOrderFinishedByRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, down)
	if out := e.create(t, 7, 42, "42:k"); out.Error.GetReason() != outcome.Reason_ORDER_PENDING {
		t.Fatalf("first answer = %v; want busy", out)
	}
	e.stock.set(grant)
	out := e.create(t, 7, 42, "42:k")
	if !out.Success || out.Order.GetState() != repo.Created {
		t.Errorf("retry after stock came back = %v; want created", out)
	}
	if n := e.count(t, "SELECT count(*) FROM outbox"); n != 1 {
		t.Errorf("outbox rows = %d; want 1", n)
	}
}

func TestCreateOrderAlreadyBought(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	first := e.create(t, 7, 42, "42:a")
	out := e.create(t, 7, 42, "42:b")
	if out.Success || out.Error.GetReason() != outcome.Reason_ALREADY_BOUGHT || out.Order.GetId() != first.Order.GetId() {
		t.Errorf("second buy = %v; want ALREADY_BOUGHT with order %d", out, first.Order.GetId())
	}
	out = e.create(t, 7, 43, "42:a")
	if out.Success || out.Error.GetReason() != outcome.Reason_REQUEST_REUSED || out.Order != nil {
		t.Errorf("request id of another user = %v; want REQUEST_REUSED and no order", out)
	}
	if n := e.stock.calls.Load(); n != 1 {
		t.Errorf("Sell called %d times; want 1", n)
	}
}

func TestCreateOrderStorageDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	_ = e.d.Close()
	var out pb.Response
	err := e.h.CreateOrder(context.Background(), &pb.CreateRequest{Sid: 7, UserId: 42, RequestId: "42:k"}, &out)
	if merrors.FromError(err).Code != 500 {
		t.Errorf("CreateOrder with the database closed: err %v; want a 500 RPC error", err)
	}
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	id := e.create(t, 7, 42, "42:a").Order.GetId()
	tests := []struct {
		name     string
		in       *pb.GetRequest
		wantCode int32
	}{
		{"own order", &pb.GetRequest{Id: id, UserId: 42}, 0},
		{"another user's", &pb.GetRequest{Id: id, UserId: 43}, 403},
		{"unknown", &pb.GetRequest{Id: id + 100, UserId: 42}, 404},
		{"zero id", &pb.GetRequest{Id: 0, UserId: 42}, 400},
		{"zero user", &pb.GetRequest{Id: id, UserId: 0}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out pb.Response
			err := e.h.GetOrder(context.Background(), tc.in, &out)
			if err != nil || out.Error.GetCode() != tc.wantCode || out.Success != (tc.wantCode == 0) {
				t.Fatalf("GetOrder = %v, %v; want code %d", &out, err, tc.wantCode)
			}
			if tc.wantCode == 0 && (out.Order.GetId() != id || out.Order.GetState() != repo.Created) {
				t.Errorf("order = %v; want created order %d", out.Order, id)
			}
			if tc.wantCode != 0 && out.Order != nil {
				t.Errorf("refused GetOrder returned order %v", out.Order)
			}
		})
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	a := e.create(t, 7, 1, "1:a").Order.GetId()
	b := e.create(t, 7, 2, "2:a").Order.GetId()
	e.stock.set(refuse(outcome.Reason_SOLD_OUT))
	e.create(t, 7, 3, "3:a")
	var out pb.AuditResponse
	if err := e.h.Audit(context.Background(), &pb.AuditRequest{Sid: 7}, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Success || out.Live != 2 || out.Failed != 1 || out.Pending != 0 || out.LiveIdSum != a+b ||
		out.UsersWithTwoLive != 0 || out.Unsent != 2 {
		t.Errorf("Audit = %v; want 2 live (sum %d), 1 failed, 2 unsent", &out, a+b)
	}
	out = pb.AuditResponse{}
	if err := e.h.Audit(context.Background(), &pb.AuditRequest{Sid: 0}, &out); err != nil || out.Error.GetCode() != 400 {
		t.Errorf("Audit(0) = %v, %v; want 400", &out, err)
	}
}

func TestRecoverFinishesPendingOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		sell       func(*stockpb.SellRequest) (*stockpb.Response, error)
		wantState  string
		wantEvents int64
	}{
		{"granted", grant, repo.Created, 1},
		{"refused", refuse(outcome.Reason_SOLD_OUT), repo.Failed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, down)
			id := e.create(t, 7, 42, "42:k").Order.GetId()
			ctx := context.Background()

			// Too young to recover: left alone.
			if n, err := e.h.Recover(ctx, time.Hour); n != 0 || err != nil {
				t.Errorf("Recover(1h) = %d, %v; want 0, nil", n, err)
			}
			// Stock still down: stays pending, the error is reported.
			if n, err := e.h.Recover(ctx, 0); n != 0 || err == nil {
				t.Errorf("Recover with stock down = %d, %v; want 0 and an error", n, err)
			}

			e.stock.set(tc.sell)
			e.stock.mu.Lock()
			e.stock.delay = 20 * time.Millisecond // widen the race
			e.stock.mu.Unlock()
			testutil.Race(10, func(int) {
				if _, err := e.h.Recover(ctx, 0); err != nil {
					t.Errorf("Recover: %v", err)
				}
			})

			var out pb.Response
			if err := e.h.GetOrder(ctx, &pb.GetRequest{Id: id, UserId: 42}, &out); err != nil {
				t.Fatal(err)
			}
			if out.Order.GetState() != tc.wantState {
				t.Errorf("state after recovery = %q; want %q", out.Order.GetState(), tc.wantState)
			}
			if n := e.count(t, "SELECT count(*) FROM outbox"); n != tc.wantEvents {
				t.Errorf("outbox rows = %d; want %d", n, tc.wantEvents)
			}
			calls := e.stock.calls.Load()
			if n, err := e.h.Recover(ctx, 0); n != 0 || err != nil {
				t.Errorf("Recover after the end = %d, %v; want 0, nil", n, err)
			}
			if e.stock.calls.Load() != calls {
				t.Errorf("Recover asked stock-srv about a finished order")
			}
		})
	}
}

func TestRecoverWalksManyOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, down)
	const n = handler.RecoverBatch + 20
	for u := int64(1); u <= n; u++ {
		e.create(t, 7, u, fmt.Sprintf("%d:r", u))
	}
	e.stock.set(grant)
	got, err := e.h.Recover(context.Background(), 0)
	if got != n || err != nil {
		t.Errorf("Recover = %d, %v; want %d, nil", got, err, n)
	}
	if c := e.count(t, "SELECT count(*) FROM orders WHERE state = 'created'"); c != n {
		t.Errorf("created orders = %d; want %d", c, n)
	}
}

// TestLookupOnly: a look-up creates nothing; it returns (and finishes) the order of the
// request id, and refuses another user's request id.
func TestLookupOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, down)
	look := func(user int64, req string) *pb.Response {
		var out pb.Response
		if err := e.h.CreateOrder(context.Background(), &pb.CreateRequest{Sid: 7, UserId: user, RequestId: req, LookupOnly: true}, &out); err != nil {
			t.Fatal(err)
		}
		return &out
	}
	if out := look(42, "42:none"); out.Error.GetCode() != 404 || out.Order != nil {
		t.Errorf("unknown request id: %v; want 404", out)
	}
	if n := e.count(t, "SELECT count(*) FROM orders"); n != 0 || e.stock.calls.Load() != 0 {
		t.Fatalf("a look-up made %d orders and %d Sell calls", n, e.stock.calls.Load())
	}
	e.create(t, 7, 42, "42:k") // left pending: stock-srv is down
	e.stock.set(grant)
	if out := look(42, "42:k"); !out.Success || out.Order.GetState() != repo.Created {
		t.Errorf("look-up of a pending order once stock is back: %v; want it finished as created", out)
	}
	if out := look(43, "42:k"); out.Success || out.Error.GetCode() != 409 {
		t.Errorf("another user's request id: %v; want 409", out)
	}
	if n := e.count(t, "SELECT count(*) FROM orders"); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
}

// TestCreateOrdersBatch: one batch with a bad item, a repeated request id, a user pressing
// twice, a look-up and a commodity that is sold out: each gets what CreateOrder would say,
// and stock-srv is asked once per distinct pending order.
func TestCreateOrdersBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(in *stockpb.SellRequest) (*stockpb.Response, error) {
		if in.Id == 9 {
			return refuse(outcome.Reason_SOLD_OUT)(in)
		}
		return grant(in)
	})
	e.create(t, 7, 50, "50:old") // an earlier order, found by look-up
	calls := e.stock.calls.Load()
	in := &pb.CreateBatchRequest{Items: []*pb.CreateRequest{
		{Sid: 7, UserId: 1, RequestId: "1:a"},
		{Sid: 7, UserId: 1, RequestId: "1:a"},                       // the same press, resent
		{Sid: 7, UserId: 2, RequestId: "2:a"},                       // ...
		{Sid: 7, UserId: 2, RequestId: "2:b"},                       // a second press: already bought
		{Sid: 0, UserId: 3, RequestId: "3:a"},                       // bad input
		{Sid: 9, UserId: 4, RequestId: "4:a"},                       // sold out
		{Sid: 7, UserId: 50, RequestId: "50:old", LookupOnly: true}, // look-up of a created order
		{Sid: 7, UserId: 51, RequestId: "51:none", LookupOnly: true},
	}}
	var out pb.CreateBatchResponse
	if err := e.h.CreateOrders(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	want := []struct {
		reason outcome.Reason
		state  string
	}{{0, "created"}, {0, "created"}, {0, "created"}, {outcome.Reason_ALREADY_BOUGHT, "created"}, {outcome.Reason_INVALID_INPUT, ""},
		{outcome.Reason_SOLD_OUT, "failed"}, {0, "created"}, {outcome.Reason_ORDER_NOT_FOUND, ""}}
	for i, w := range want {
		r := out.Items[i]
		if r.Error.GetReason() != w.reason || r.Order.GetState() != w.state || r.Success != (w.reason == 0) {
			t.Errorf("item %d: %v; want %s state %q", i, r, w.reason, w.state)
		}
	}
	if out.Items[0].Order.GetId() != out.Items[1].Order.GetId() {
		t.Error("a resent press got a second order")
	}
	if out.Items[3].Order.GetId() != out.Items[2].Order.GetId() {
		t.Errorf("second press: %v", out.Items[3])
	}
	if n := e.stock.calls.Load() - calls; n != 3 {
		t.Errorf("stock-srv asked %d times; want 3 (users 1, 2 and 4)", n)
	}
	if n := e.count(t, "SELECT count(*) FROM outbox"); n != 3 {
		t.Errorf("outbox rows = %d; want 3", n)
	}
	big := &pb.CreateBatchRequest{Items: make([]*pb.CreateRequest, handler.MaxBatch+1)}
	if err := e.h.CreateOrders(context.Background(), big, &out); err == nil {
		t.Error("an oversized batch was accepted")
	}
}

// Holders answers who holds a sold-out commodity's units (live orders: pending or created)
// or had one cancelled (whose resend must get that order back), with stock-srv's time; a
// commodity that is not sold out has no snapshot, and stock-srv down is an RPC error.
func TestHolders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	e.create(t, 7, 1, "1:a")
	e.create(t, 7, 2, "2:a")
	cancelled := e.create(t, 7, 6, "6:a")
	if _, err := repo.New(e.d).Cancel(context.Background(), []int64{cancelled.Order.Id}, "PAYMENT_EXPIRED"); err != nil {
		t.Fatal(err)
	}
	e.stock.set(refuse(outcome.Reason_SOLD_OUT))
	e.create(t, 7, 3, "3:a") // failed: holds nothing
	e.stock.set(down)
	e.create(t, 7, 4, "4:a") // pending: may still get a unit
	e.create(t, 8, 5, "5:a") // another commodity
	holders := func() (*pb.HoldersResponse, error) {
		var out pb.HoldersResponse
		err := e.h.Holders(context.Background(), &pb.HoldersRequest{Sid: 7}, &out)
		return &out, err
	}
	if _, err := holders(); err == nil {
		t.Error("Holders with stock-srv down: no error")
	}
	e.stock.mu.Lock()
	e.stock.soldOut = &stockpb.SoldOutResponse{Success: true, SoldOut: true, ValidForMs: 900}
	e.stock.mu.Unlock()
	out, err := holders()
	slices.Sort(out.GetUsers())
	if err != nil || !out.SoldOut || out.ValidForMs != 900 || !slices.Equal(out.Users, []int64{1, 2, 4, 6}) {
		t.Errorf("Holders = %v, %v; want sold out for 900 ms, users 1 2 4 6", out, err)
	}
	e.stock.mu.Lock()
	e.stock.soldOut = &stockpb.SoldOutResponse{Success: true}
	e.stock.mu.Unlock()
	if out, err := holders(); err != nil || out.SoldOut || len(out.Users) != 0 {
		t.Errorf("Holders of a commodity on sale = %v, %v; want not sold out, nobody", out, err)
	}
}

// failingFinish is the real store whose Finish fails: the finisher never records anything,
// as when the process dies right after answering.
type failingFinish struct{ handler.Store }

func (failingFinish) Finish(context.Context, []repo.Grant, []repo.Refusal) (map[int64]repo.Order, error) {
	return nil, errors.New("killed before the finish")
}

// A buy is answered once its unit is granted, before its order is recorded as created; if
// that record never happens, recovery makes it, with its one payment event.
func TestAnsweredBeforeFinishRecoveredAfter(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, "order", migrations.FS)
	stock := &fakeStock{sell: grant}
	dying := handler.New(failingFinish{repo.New(d)}, stock, nil, 3*time.Second)
	var out pb.Response
	if err := dying.CreateOrder(context.Background(), &pb.CreateRequest{Sid: 7, UserId: 42, RequestId: "42:k"}, &out); err != nil {
		t.Fatal(err)
	}
	dying.Close()
	if !out.Success || out.Order.GetState() != repo.Created || out.Order.GetName() != "phone" {
		t.Fatalf("answer = %v; want created", &out)
	}
	o, err := repo.New(d).Get(context.Background(), out.Order.Id)
	if err != nil || o.State != repo.Pending {
		t.Fatalf("order in the database = %+v, %v; want pending until recorded", o, err)
	}
	// The next process recovers it: created, with one event, the same order id.
	fresh := handler.New(repo.New(d), stock, nil, 3*time.Second)
	defer fresh.Close()
	if n, err := fresh.Recover(context.Background(), 0); n != 1 || err != nil {
		t.Fatalf("Recover = %d, %v; want 1", n, err)
	}
	if o, _ := repo.New(d).Get(context.Background(), out.Order.Id); o.State != repo.Created {
		t.Errorf("after recovery the order is %s; want created", o.State)
	}
	var events int64
	if err := d.Raw("SELECT count(*) FROM outbox").Scan(&events).Error; err != nil || events != 1 {
		t.Errorf("outbox rows = %d, %v; want 1", events, err)
	}
}
