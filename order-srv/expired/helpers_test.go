package expired

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/basic/testutil"
	ordermig "secbuy/order-srv/migrations"
	"secbuy/order-srv/repo"
	eventpb "secbuy/proto/events"
	stockhandler "secbuy/stock-srv/handler"
	stockmig "secbuy/stock-srv/migrations"
	stockpb "secbuy/stock-srv/proto/stock"
	stockrepo "secbuy/stock-srv/repo"
)

// localStock is stock-srv's handler on its own database, called in process as the RPC
// client would call it. While down is set every call fails as a timed-out RPC.
type localStock struct {
	stockpb.StockService // other methods are not called
	h                    *stockhandler.Stock
	repo                 *stockrepo.Repo
	down                 atomic.Bool
	releases             atomic.Int64 // ReleaseBatch calls
}

func newLocalStock(t *testing.T) *localStock {
	t.Helper()
	r := stockrepo.New(dbtest.New(t, "stock", stockmig.FS))
	s := &localStock{h: stockhandler.New(r), repo: r}
	t.Cleanup(s.h.Close)
	return s
}

var errDown = merrors.Timeout("go.micro.client", "request timeout")

func (s *localStock) SellBatch(ctx context.Context, in *stockpb.SellBatchRequest, _ ...client.CallOption) (*stockpb.SellBatchResponse, error) {
	if s.down.Load() {
		return nil, errDown
	}
	var out stockpb.SellBatchResponse
	return &out, s.h.SellBatch(ctx, in, &out)
}

func (s *localStock) ReleaseBatch(ctx context.Context, in *stockpb.ReleaseBatchRequest, _ ...client.CallOption) (*stockpb.ReleaseBatchResponse, error) {
	s.releases.Add(1)
	if s.down.Load() {
		return nil, errDown
	}
	var out stockpb.ReleaseBatchResponse
	return &out, s.h.ReleaseBatch(ctx, in, &out)
}

// failingStore fails Cancel while fail is set.
type failingStore struct {
	Store
	fail atomic.Bool
}

func (f *failingStore) Cancel(ctx context.Context, ids []int64, reason string) (map[int64]repo.Order, error) {
	if f.fail.Load() {
		return nil, errors.New("database unavailable")
	}
	return f.Store.Cancel(ctx, ids, reason)
}

func newOrders(t *testing.T) (*repo.Repo, *db.DB) {
	t.Helper()
	d := dbtest.New(t, "order", ordermig.FS)
	return repo.New(d), d
}

func expiredMsg(t *testing.T, order int64) *testutil.Msg {
	t.Helper()
	data, err := eventpb.Marshal(&eventpb.ExpiredEvent{OrderId: order, CommodityId: 7, UserId: 1, PaymentId: 1, ExpireTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	return testutil.NewMsg([]byte(data))
}
