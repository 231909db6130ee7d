package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
)

// fakeStore records calls and answers with err (or a fixed commodity). For SellBatch, an
// outcome error (sold out, ...) answers each item; any other error fails the batch.
type fakeStore struct {
	calls int
	err   error
	sold  []repo.SellItem // the items given to SellBatch

	released []string // the request ids given to ReleaseBatch
}

// newHandler returns a handler on store, closed when the test ends.
func newHandler(t *testing.T, store Store) *Stock {
	h := New(store)
	t.Cleanup(h.Close)
	return h
}

func (f *fakeStore) Create(_ context.Context, c repo.Commodity) (repo.Commodity, error) {
	f.calls++
	c.ID = 7
	return c, f.err
}
func (f *fakeStore) Get(_ context.Context, id int64) (repo.Commodity, error) {
	f.calls++
	return repo.Commodity{ID: id, Name: "x", Count: 3}, f.err
}
func (f *fakeStore) List(context.Context, repo.ListQuery) ([]repo.Commodity, error) {
	f.calls++
	return nil, f.err
}
func (f *fakeStore) SellBatch(_ context.Context, items []repo.SellItem) ([]repo.SellResult, error) {
	f.calls++
	f.sold = append(f.sold, items...)
	if f.err != nil && !isOutcome(f.err) {
		return nil, f.err
	}
	out := make([]repo.SellResult, len(items))
	for i, it := range items {
		out[i] = repo.SellResult{Commodity: repo.Commodity{ID: it.ID, Name: "x", Count: 3, Sale: 1}, Err: f.err}
	}
	return out, nil
}
func isOutcome(err error) bool {
	for _, e := range []error{repo.ErrNotFound, repo.ErrSoldOut, repo.ErrNotStarted, repo.ErrEnded, repo.ErrRequestReused} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (f *fakeStore) SoldOut(context.Context, int64) (bool, time.Duration, error) {
	f.calls++
	return true, time.Second, f.err
}

func (f *fakeStore) Audit(context.Context, int64) (repo.Audit, error) {
	f.calls++
	return repo.Audit{Count: 3, Sale: 1, Granted: 1}, f.err
}

// ReleaseBatch answers request id "unknown" with ErrNoSale, "refused" with ErrNotGranted,
// "again" as released before, and any other as released now; err fails the batch.
func (f *fakeStore) ReleaseBatch(_ context.Context, rids []string) ([]repo.ReleaseResult, error) {
	f.calls++
	f.released = append(f.released, rids...)
	if f.err != nil {
		return nil, f.err
	}
	out := make([]repo.ReleaseResult, len(rids))
	for i, rid := range rids {
		switch rid {
		case "unknown":
			out[i].Err = repo.ErrNoSale
		case "refused":
			out[i] = repo.ReleaseResult{Sid: 7, Err: repo.ErrNotGranted}
		case "again":
			out[i] = repo.ReleaseResult{Sid: 7}
		default:
			out[i] = repo.ReleaseResult{Sid: 7, Released: true}
		}
	}
	return out, nil
}

func TestCreateCommodityBadInput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		in   *pb.Commodity
		want string
	}{
		{"empty name", &pb.Commodity{Count: 10}, "name must not be empty"},
		{"blank name", &pb.Commodity{Name: "  \t", Count: 10}, "name must not be empty"},
		{"long name", &pb.Commodity{Name: strings.Repeat("商", 201), Count: 10}, "at most 200"},
		{"invalid utf8", &pb.Commodity{Name: "a\xffb", Count: 10}, "valid UTF-8"},
		{"NUL in name", &pb.Commodity{Name: "a\x00b", Count: 10}, "name: contains a NUL character"},
		{"control character in name", &pb.Commodity{Name: "a\x1bb", Count: 10}, "name: contains a control character (U+001B)"},
		{"zero count", &pb.Commodity{Name: "x"}, "count must be"},
		{"negative count", &pb.Commodity{Name: "x", Count: -5}, "count must be"},
		{"huge count", &pb.Commodity{Name: "x", Count: MaxCount + 1}, "count must be"},
		{"sale above count", &pb.Commodity{Name: "x", Count: 5, Sale: 6}, "sale must be between"},
		{"negative sale", &pb.Commodity{Name: "x", Count: 5, Sale: -1}, "sale must be between"},
		{"presold", &pb.Commodity{Name: "x", Count: 5, Sale: 2}, "sale must be 0"},
		{"end before start", &pb.Commodity{Name: "x", Count: 5, StartTime: 2000, EndTime: 1000}, "endTime must be after"},
		{"end equals start", &pb.Commodity{Name: "x", Count: 5, StartTime: 2000, EndTime: 2000}, "endTime must be after"},
		{"negative time", &pb.Commodity{Name: "x", Count: 5, StartTime: -1}, "unix seconds"},
		{"id given", &pb.Commodity{Id: 3, Name: "x", Count: 5}, "assigned by the server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeStore{}
			var out pb.Response
			if err := newHandler(t, f).CreateCommodity(context.Background(), c.in, &out); err != nil {
				t.Fatalf("rpc error %v; want a 400 in the response", err)
			}
			if out.Success || out.Error.GetCode() != 400 || !strings.Contains(out.Error.GetDetail(), c.want) {
				t.Errorf("got %v; want 400 %q", &out, c.want)
			}
			if f.calls != 0 {
				t.Errorf("store called %d times for bad input", f.calls)
			}
		})
	}
}

func TestCreateCommodityOK(t *testing.T) {
	t.Parallel()
	f := &fakeStore{}
	var out pb.Response
	in := &pb.Commodity{Name: " 商品 ", Count: 10, StartTime: 1000, EndTime: 2000}
	if err := newHandler(t, f).CreateCommodity(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	c := out.Commodity
	if !out.Success || c.GetId() != 7 || c.Name != "商品" || c.Count != 10 || c.StartTime != 1000 || c.EndTime != 2000 {
		t.Errorf("got %v", &out)
	}
}

func TestSellAndGetOutcomes(t *testing.T) {
	t.Parallel()
	ok := &pb.SellRequest{Id: 1, RequestId: "u1:a", UserId: 1}
	for _, c := range []struct {
		name      string
		in        *pb.SellRequest
		storeErr  error
		wantCode  int32
		wantCalls int
		rpcErr    bool
	}{
		{"granted", ok, nil, 0, 1, false},
		{"sold out", ok, repo.ErrSoldOut, 409, 1, false},
		{"not started", ok, repo.ErrNotStarted, 409, 1, false},
		{"ended", ok, repo.ErrEnded, 409, 1, false},
		{"reused request id", ok, repo.ErrRequestReused, 409, 1, false},
		{"unknown commodity", ok, repo.ErrNotFound, 404, 1, false},
		{"database down", ok, errors.New("conn refused"), 0, 1, true},
		{"zero id", &pb.SellRequest{RequestId: "r", UserId: 1}, nil, 400, 0, false},
		{"negative id", &pb.SellRequest{Id: -1, RequestId: "r", UserId: 1}, nil, 400, 0, false},
		{"no user", &pb.SellRequest{Id: 1, RequestId: "r"}, nil, 400, 0, false},
		{"no request id", &pb.SellRequest{Id: 1, UserId: 1}, nil, 400, 0, false},
		{"long request id", &pb.SellRequest{Id: 1, UserId: 1, RequestId: strings.Repeat("r", 129)}, nil, 400, 0, false},
		{"NUL in request id", &pb.SellRequest{Id: 1, UserId: 1, RequestId: "r\x00"}, nil, 400, 0, false},
		{"invalid utf8 request id", &pb.SellRequest{Id: 1, UserId: 1, RequestId: "r\xff"}, nil, 400, 0, false},
		{"string buyer", &pb.SellRequest{Id: 1, Buyer: "6f1c2a9e-3b7d", RequestId: "r"}, nil, 0, 1, false},
		{"buyer and its userId", &pb.SellRequest{Id: 1, Buyer: "1", UserId: 1, RequestId: "r"}, nil, 0, 1, false},
		{"buyer and another userId", &pb.SellRequest{Id: 1, Buyer: "1", UserId: 2, RequestId: "r"}, nil, 400, 0, false},
		{"buyer with a space", &pb.SellRequest{Id: 1, Buyer: "a b", RequestId: "r"}, nil, 400, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeStore{err: c.storeErr}
			var out pb.Response
			err := newHandler(t, f).Sell(context.Background(), c.in, &out)
			if (err != nil) != c.rpcErr {
				t.Fatalf("rpc error = %v, want error: %v", err, c.rpcErr)
			}
			if out.Error.GetCode() != c.wantCode || out.Success != (c.wantCode == 0 && !c.rpcErr) {
				t.Errorf("got %v, want code %d", &out, c.wantCode)
			}
			if f.calls != c.wantCalls {
				t.Errorf("store calls = %d, want %d", f.calls, c.wantCalls)
			}
		})
	}
	for _, id := range []int64{0, -3} {
		f := &fakeStore{}
		var out pb.Response
		if err := newHandler(t, f).GetCommodity(context.Background(), &pb.Request{Id: id}, &out); err != nil || out.Error.GetCode() != 400 || f.calls != 0 {
			t.Errorf("GetCommodity(%d) = %v %v, calls %d; want 400 without a store call", id, &out, err, f.calls)
		}
	}
	var out pb.Response
	if err := newHandler(t, &fakeStore{err: repo.ErrNotFound}).GetCommodity(context.Background(), &pb.Request{Id: 9}, &out); err != nil || out.Error.GetCode() != 404 {
		t.Errorf("unknown id: %v %v, want 404", &out, err)
	}
}

func TestListLimits(t *testing.T) {
	t.Parallel()
	for _, in := range []*pb.ListRequest{{Offset: -1}, {Limit: -1}, {Limit: MaxList + 1}} {
		f := &fakeStore{}
		var out pb.ListResponse
		if err := newHandler(t, f).ListCommodities(context.Background(), in, &out); err != nil || out.Error.GetCode() != 400 || f.calls != 0 {
			t.Errorf("List(%v) = %v %v; want 400 without a store call", in, &out, err)
		}
	}
}

func TestSellBatchRPC(t *testing.T) {
	t.Parallel()
	good := func(n int64) *pb.SellRequest { return &pb.SellRequest{Id: n, RequestId: fmt.Sprint("r", n), UserId: n} }
	in := &pb.SellBatchRequest{Items: []*pb.SellRequest{
		good(1), {RequestId: "r", UserId: 1}, good(2), {Id: 3, UserId: 3, RequestId: "r\x00"}, good(4), nil,
	}}
	f := &fakeStore{}
	var out pb.SellBatchResponse
	if err := newHandler(t, f).SellBatch(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	wantCodes := []int32{0, 400, 0, 400, 0, 400}
	if len(out.Items) != len(wantCodes) {
		t.Fatalf("%d answers for %d items", len(out.Items), len(wantCodes))
	}
	for i, r := range out.Items {
		if r.Error.GetCode() != wantCodes[i] || r.Success != (wantCodes[i] == 0) {
			t.Errorf("item %d: %v, want code %d", i, r, wantCodes[i])
		}
		if r.Success && r.Commodity.GetId() != in.Items[i].Id {
			t.Errorf("item %d answered with commodity %v", i, r.Commodity)
		}
	}
	if f.calls != 1 || len(f.sold) != 3 || f.sold[0].ID != 1 || f.sold[1].ID != 2 || f.sold[2].ID != 4 {
		t.Errorf("store got %d calls with %+v; want one call with items 1, 2, 4", f.calls, f.sold)
	}

	f = &fakeStore{err: repo.ErrSoldOut}
	out = pb.SellBatchResponse{}
	if err := newHandler(t, f).SellBatch(context.Background(), &pb.SellBatchRequest{Items: []*pb.SellRequest{good(1), good(2)}}, &out); err != nil ||
		len(out.Items) != 2 || out.Items[0].Error.GetCode() != 409 || out.Items[1].Error.GetCode() != 409 {
		t.Errorf("sold out: %v %v; want 409 for each", &out, err)
	}

	f = &fakeStore{err: errors.New("conn refused")}
	out = pb.SellBatchResponse{}
	if err := newHandler(t, f).SellBatch(context.Background(), &pb.SellBatchRequest{Items: []*pb.SellRequest{good(1)}}, &out); err == nil || out.Items != nil {
		t.Errorf("failed transaction: %v %v; want an RPC error and no answers", &out, err)
	}

	f = &fakeStore{}
	big := &pb.SellBatchRequest{}
	for i := int64(1); i <= MaxSellBatch+1; i++ {
		big.Items = append(big.Items, good(i))
	}
	out = pb.SellBatchResponse{}
	if err := newHandler(t, f).SellBatch(context.Background(), big, &out); err != nil || len(out.Items) != MaxSellBatch+1 || f.calls != 0 {
		t.Fatalf("oversized batch: %d answers, %v, %d store calls; want a 400 each", len(out.Items), err, f.calls)
	}
	for _, r := range out.Items {
		if r.Error.GetCode() != 400 {
			t.Fatalf("oversized batch answered %v, want 400", r)
		}
	}

	out = pb.SellBatchResponse{}
	if err := newHandler(t, f).SellBatch(context.Background(), &pb.SellBatchRequest{}, &out); err != nil || len(out.Items) != 0 || f.calls != 0 {
		t.Errorf("empty batch: %v %v, %d calls", &out, err, f.calls)
	}
}
