package expired

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"
	"google.golang.org/protobuf/encoding/protojson"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/basic/natstest"
	ordermig "secbuy/order-srv/migrations"
	"secbuy/order-srv/repo"
	paypb "secbuy/payment-srv/proto/payment"
	stockhandler "secbuy/stock-srv/handler"
	stockmig "secbuy/stock-srv/migrations"
	stockpb "secbuy/stock-srv/proto/stock"
	stockrepo "secbuy/stock-srv/repo"
)

// startNATS runs a private nats-server with JetStream for the test.
func startNATS(t testing.TB) string { return natstest.Start(t) }

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

// fakeMsg is a delivered event that records what was done with it.
type fakeMsg struct {
	jetstream.Msg // methods the consumer does not use are left nil
	data          []byte
	outcome       string
}

func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return nil }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return nil, errors.New("no metadata") }
func (m *fakeMsg) Ack() error                                { m.outcome += "ack"; return nil }
func (m *fakeMsg) DoubleAck(context.Context) error           { m.outcome += "ack"; return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error          { m.outcome += "nak"; return nil }
func (m *fakeMsg) Term() error                               { m.outcome += "term"; return nil }

func expiredMsg(t *testing.T, order int64) *fakeMsg {
	t.Helper()
	data, err := protojson.Marshal(&paypb.ExpiredEvent{OrderId: order, CommodityId: 7, UserId: 1, PaymentId: 1, ExpireTime: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeMsg{data: data}
}

// outcomes returns what was done with each message, and clears it for a redelivery.
func outcomes(msgs ...*fakeMsg) string {
	var b bytes.Buffer
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(m.outcome)
		m.outcome = ""
	}
	return b.String()
}
