package handler

import (
	"context"
	"strings"
	"testing"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/stock-srv/migrations"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
)

// hostileText are the seeds of every text field: a NUL, invalid UTF-8, control
// characters, a lone surrogate's bytes, a real U+FFFD, and 1 MB.
var hostileText = []string{"phone", "手机", "a\x00b", "\x00", "a\xffb", "\xed\xa0\x80", "a\nb", "\x7f", "\u0085",
	"a\ufffdb", " ", strings.Repeat("x", 1<<20), strings.Repeat("商", 201)}

// snapshot is what the stock tables hold: their rows' count and the sum of every sale.
func snapshot(t testing.TB, d *db.DB) [4]int64 {
	t.Helper()
	var s [4]int64
	err := d.Raw(`SELECT (SELECT count(*) FROM stock), (SELECT coalesce(sum(sale), 0) FROM stock),
		(SELECT count(*) FROM stock_sale), (SELECT count(*) FROM stock_sale WHERE released)`).Row().Scan(&s[0], &s[1], &s[2], &s[3])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzCreateCommodity against the real Postgres: whatever the name and numbers, the
// answer is a success or a refusal in the response, never an RPC error (the "busy, try
// again" a client would resend forever); a refusal writes nothing, and a success stores
// the name exactly as sent (less the spaces around it).
func FuzzCreateCommodity(f *testing.F) {
	for _, name := range hostileText {
		f.Add(name, int64(5), int64(0), int32(0))
	}
	f.Add("x", int64(1)<<62, int64(0), int32(0))
	f.Add("x", int64(-1), int64(-1)<<62, int32(1)<<30)
	d := dbtest.New(f, "stock", migrations.FS)
	h := New(repo.New(d))
	f.Cleanup(h.Close)
	f.Fuzz(func(t *testing.T, name string, count, start int64, buckets int32) {
		before := snapshot(t, d)
		var out pb.Response
		if err := h.CreateCommodity(context.Background(), &pb.Commodity{Name: name, Count: count, StartTime: start, Buckets: buckets}, &out); err != nil {
			t.Fatalf("CreateCommodity(%.40q, %d): RPC error %v", name, count, err)
		}
		after := snapshot(t, d)
		switch {
		case out.Success && (out.Commodity.GetName() != strings.TrimSpace(name) || after[0] != before[0]+1):
			t.Fatalf("CreateCommodity(%.40q): stored %.40q, rows %v -> %v", name, out.Commodity.GetName(), before, after)
		case !out.Success && (out.Error.GetCode() != 400 || after != before):
			t.Fatalf("CreateCommodity(%.40q, %d): %v, rows %v -> %v; want 400 and nothing written", name, count, out.Error, before, after)
		}
	})
}

// FuzzSellRelease against the real Postgres: a hostile request id or id is refused in the
// response (400), never an RPC error, and sells or releases nothing.
func FuzzSellRelease(f *testing.F) {
	for _, rid := range hostileText {
		f.Add(rid, int64(1), int64(7))
	}
	f.Add("r", int64(1)<<62, int64(-1))
	d := dbtest.New(f, "stock", migrations.FS)
	store := repo.New(d)
	c, err := store.Create(context.Background(), repo.Commodity{Name: "phone", Count: 1 << 30})
	if err != nil {
		f.Fatal(err)
	}
	h := New(store)
	f.Cleanup(h.Close)
	f.Fuzz(func(t *testing.T, rid string, id, user int64) {
		if id == 1 {
			id = c.ID
		}
		before := snapshot(t, d)
		var sold pb.Response
		if err := h.Sell(context.Background(), &pb.SellRequest{Id: id, UserId: user, RequestId: rid}, &sold); err != nil {
			t.Fatalf("Sell(%d, %d, %.40q): RPC error %v", id, user, rid, err)
		}
		if sold.Error.GetCode() == 400 && snapshot(t, d) != before {
			t.Fatalf("Sell(%d, %d, %.40q) refused as bad input but wrote: %v -> %v", id, user, rid, before, snapshot(t, d))
		}
		before = snapshot(t, d)
		var rel pb.ReleaseResponse
		if err := h.Release(context.Background(), &pb.ReleaseRequest{RequestId: rid}, &rel); err != nil {
			t.Fatalf("Release(%.40q): RPC error %v", rid, err)
		}
		if rel.Error.GetCode() == 400 && snapshot(t, d) != before {
			t.Fatalf("Release(%.40q) refused as bad input but wrote: %v -> %v", rid, before, snapshot(t, d))
		}
	})
}
