package handler_test

import (
	"context"
	"testing"

	pb "secbuy/order-srv/proto/order"
)

// The buyer field names the buyer; the old userId still does alone, and the answer carries
// both (userId 0 for a buyer that is not a number).
func TestBuyerField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, grant)
	ctx := context.Background()
	uuid := "6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34"
	var out pb.Response
	if err := e.h.CreateOrder(ctx, &pb.CreateRequest{Sid: 7, Buyer: uuid, RequestId: "u:a"}, &out); err != nil || !out.Success {
		t.Fatalf("CreateOrder by %s = %v, %v", uuid, &out, err)
	}
	if o := out.Order; o.Buyer != uuid || o.UserId != 0 {
		t.Errorf("order = buyer %q, userId %d; want %q, 0", o.Buyer, o.UserId, uuid)
	}
	id := out.Order.Id
	num := e.create(t, 7, 42, "42:a").Order
	if num.Buyer != "42" || num.UserId != 42 {
		t.Errorf("order of userId 42 = buyer %q, userId %d; want 42, 42", num.Buyer, num.UserId)
	}
	e.settle(t)
	for name, c := range map[string]struct {
		in   *pb.GetRequest
		want int32
	}{
		"own, by buyer":        {&pb.GetRequest{Id: id, Buyer: uuid}, 0},
		"another buyer's":      {&pb.GetRequest{Id: id, Buyer: "42"}, 403},
		"numeric, by buyer":    {&pb.GetRequest{Id: num.Id, Buyer: "42"}, 0},
		"numeric, by both":     {&pb.GetRequest{Id: num.Id, Buyer: "42", UserId: 42}, 0},
		"buyer and userId off": {&pb.GetRequest{Id: num.Id, Buyer: "42", UserId: 43}, 400},
		"bad buyer":            {&pb.GetRequest{Id: id, Buyer: "a b"}, 400},
	} {
		t.Run(name, func(t *testing.T) {
			var out pb.Response
			if err := e.h.GetOrder(ctx, c.in, &out); err != nil || out.Error.GetCode() != c.want {
				t.Errorf("GetOrder = %v, %v; want code %d", &out, err, c.want)
			}
		})
	}
	var list pb.ListResponse
	if err := e.h.ListOrders(ctx, &pb.ListRequest{Buyer: uuid}, &list); err != nil || len(list.Orders) != 1 || list.Orders[0].Id != id {
		t.Errorf("ListOrders(%s) = %v, %v; want order %d", uuid, &list, err, id)
	}
}
