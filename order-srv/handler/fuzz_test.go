package handler_test

import (
	"context"
	"strings"
	"testing"

	pb "secbuy/order-srv/proto/order"
)

// FuzzCreateOrder against the real Postgres: a hostile request id or traceparent (a NUL,
// invalid UTF-8, control characters, 1 MB) is refused in the response (400), never an RPC
// error, and writes no order and no event; a good one makes its order.
func FuzzCreateOrder(f *testing.F) {
	for _, s := range []string{"r", "a\x00b", "a\xffb", "\xed\xa0\x80", "a\nb", "\u0085", strings.Repeat("x", 1<<20)} {
		f.Add(int64(3), s, "")
		f.Add(int64(3), "r-tp", s)
	}
	f.Add(int64(-1)<<62, "r", "")
	e := newEnv(f, grant)
	f.Fuzz(func(t *testing.T, sid int64, rid, traceparent string) {
		rows := func() int64 {
			return e.count(t, `SELECT (SELECT count(*) FROM orders) * 1000000 + (SELECT count(*) FROM outbox)`)
		}
		before := rows()
		var out pb.Response
		err := e.h.CreateOrder(context.Background(), &pb.CreateRequest{Sid: sid, UserId: 9, RequestId: rid, Traceparent: traceparent}, &out)
		if err != nil {
			t.Fatalf("CreateOrder(%d, %.40q, %.40q): RPC error %v", sid, rid, traceparent, err)
		}
		e.settle(t)
		if out.Error.GetCode() == 400 && rows() != before {
			t.Fatalf("CreateOrder(%d, %.40q, %.40q) refused as bad input but wrote: %d -> %d", sid, rid, traceparent, before, rows())
		}
	})
}
