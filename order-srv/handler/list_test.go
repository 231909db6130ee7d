package handler_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	merrors "go-micro.dev/v6/errors"
	"google.golang.org/protobuf/proto"

	"secbuy/order-srv/handler"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/repo"
	"secbuy/proto/outcome"
)

// list calls ListOrders and fails the test on an RPC error.
func (e *env) list(t *testing.T, in *pb.ListRequest) *pb.ListResponse {
	t.Helper()
	var out pb.ListResponse
	if err := e.h.ListOrders(context.Background(), in, &out); err != nil {
		t.Fatalf("ListOrders(%v): %v", in, err)
	}
	return &out
}

func listedIDs(os []*pb.Order) []int64 {
	ids := make([]int64, len(os))
	for i, o := range os {
		ids[i] = o.GetId()
	}
	return ids
}

// A buyer's list holds their orders of every state, newest first, each as GetOrder shows
// it, and nobody else's; pages of it say whether another page follows.
func TestListOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	created := e.create(t, 1, 42, "42:a").Order.GetId()
	e.create(t, 1, 43, "43:a") // another buyer's
	cancelled := e.create(t, 2, 42, "42:b").Order.GetId()
	if _, err := repo.New(e.d).Cancel(context.Background(), []int64{cancelled}, repo.ExpiredReason); err != nil {
		t.Fatal(err)
	}
	e.stock.set(refuse(outcome.Reason_SOLD_OUT))
	failed := e.create(t, 3, 42, "42:c").Order.GetId()
	e.create(t, 3, 43, "43:c")
	e.stock.set(down)
	pending := e.create(t, 4, 42, "42:d").Order.GetId()
	want := []int64{pending, failed, cancelled, created}

	out := e.list(t, &pb.ListRequest{UserId: 42})
	if !out.Success || out.Error != nil || out.More || !slices.Equal(listedIDs(out.Orders), want) {
		t.Fatalf("ListOrders(42) = %v; want orders %v, no more", out, want)
	}
	wantStates := []string{repo.Pending, repo.Failed, repo.Cancelled, repo.Created}
	wantFailure := []outcome.Reason{0, outcome.Reason_SOLD_OUT, outcome.Reason_PAYMENT_EXPIRED, 0}
	for i, o := range out.Orders {
		if o.State != wantStates[i] || o.Failure != wantFailure[i] || o.UserId != 42 {
			t.Errorf("order %d = %v; want user 42, %s, failure %s", o.Id, o, wantStates[i], wantFailure[i])
		}
		var got pb.Response
		if err := e.h.GetOrder(context.Background(), &pb.GetRequest{Id: o.Id, UserId: 42}, &got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(o, got.Order) {
			t.Errorf("listed order %v; GetOrder shows %v", o, got.Order)
		}
	}
	if out := e.list(t, &pb.ListRequest{UserId: 43}); len(out.Orders) != 2 || out.Orders[0].UserId != 43 || out.Orders[1].UserId != 43 {
		t.Errorf("ListOrders(43) = %v; want user 43's 2 orders", out)
	}
	if out := e.list(t, &pb.ListRequest{UserId: 44}); !out.Success || len(out.Orders) != 0 || out.More {
		t.Errorf("ListOrders of a buyer without orders = %v; want success, none", out)
	}

	pages := []struct {
		name          string
		offset, limit int64
		want          []int64
		wantMore      bool
	}{
		{"first page", 0, 3, want[:3], true},
		{"second page", 3, 3, want[3:], false},
		{"page of exactly all", 0, 4, want, false},
		{"one by one", 2, 1, want[2:3], true},
		{"the last one", 3, 1, want[3:], false},
		{"past the end", 4, 3, nil, false},
		{"largest page", 0, handler.MaxList, want, false},
	}
	for _, tc := range pages {
		t.Run(tc.name, func(t *testing.T) {
			out := e.list(t, &pb.ListRequest{UserId: 42, Offset: tc.offset, Limit: tc.limit})
			if !out.Success || out.More != tc.wantMore || !slices.Equal(listedIDs(out.Orders), tc.want) {
				t.Errorf("ListOrders(offset %d, limit %d) = %v, more %v; want %v, more %v",
					tc.offset, tc.limit, listedIDs(out.Orders), out.More, tc.want, tc.wantMore)
			}
		})
	}
}

// A list request that names no limit gets pages of DefaultList orders.
func TestListOrdersDefaultLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	const n = handler.DefaultList + 5
	in := &pb.CreateBatchRequest{}
	for i := range n {
		in.Items = append(in.Items, &pb.CreateRequest{Sid: int64(100 + i), UserId: 42, RequestId: fmt.Sprintf("42:%d", i)})
	}
	var made pb.CreateBatchResponse
	if err := e.h.CreateOrders(context.Background(), in, &made); err != nil {
		t.Fatal(err)
	}
	e.settle(t)
	var want []int64
	for _, r := range made.Items {
		if !r.Success {
			t.Fatalf("CreateOrders item = %v; want created", r)
		}
		want = append(want, r.Order.GetId())
	}
	slices.Sort(want)
	slices.Reverse(want) // newest first

	first := e.list(t, &pb.ListRequest{UserId: 42})
	if len(first.Orders) != handler.DefaultList || !first.More || !slices.Equal(listedIDs(first.Orders), want[:handler.DefaultList]) {
		t.Errorf("ListOrders(limit 0) = %d orders %v, more %v; want the newest %d, more",
			len(first.Orders), listedIDs(first.Orders), first.More, handler.DefaultList)
	}
	rest := e.list(t, &pb.ListRequest{UserId: 42, Offset: handler.DefaultList})
	if rest.More || !slices.Equal(listedIDs(rest.Orders), want[handler.DefaultList:]) {
		t.Errorf("ListOrders(offset %d, limit 0) = %v, more %v; want %v, no more",
			handler.DefaultList, listedIDs(rest.Orders), rest.More, want[handler.DefaultList:])
	}
}

// Bad input is refused with INVALID_INPUT, not an RPC error; the database is not asked.
func TestListOrdersBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	e.create(t, 1, 42, "42:a")
	_ = e.d.Close() // a request that reached storage would fail with a 500
	tests := []struct {
		name string
		in   *pb.ListRequest
	}{
		{"zero user", &pb.ListRequest{UserId: 0}},
		{"negative user", &pb.ListRequest{UserId: -42}},
		{"negative offset", &pb.ListRequest{UserId: 42, Offset: -1}},
		{"negative limit", &pb.ListRequest{UserId: 42, Limit: -1}},
		{"limit too large", &pb.ListRequest{UserId: 42, Limit: handler.MaxList + 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out pb.ListResponse
			err := e.h.ListOrders(context.Background(), tc.in, &out)
			if err != nil || out.Success || out.Error.GetReason() != outcome.Reason_INVALID_INPUT ||
				out.Error.GetCode() != 400 || out.Error.GetDetail() == "" || len(out.Orders) != 0 || out.More {
				t.Errorf("ListOrders(%v) = %v, %v; want INVALID_INPUT (400) with a detail, no orders", tc.in, &out, err)
			}
		})
	}
}

func TestListOrdersStorageDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	_ = e.d.Close()
	var out pb.ListResponse
	err := e.h.ListOrders(context.Background(), &pb.ListRequest{UserId: 42}, &out)
	if merrors.FromError(err).Code != 500 || out.Success || len(out.Orders) != 0 {
		t.Errorf("ListOrders with the database closed = %v, %v; want a 500 RPC error", &out, err)
	}
}
