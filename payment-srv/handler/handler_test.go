package handler_test

import (
	"context"
	"errors"
	"testing"
	"time"

	merrors "go-micro.dev/v6/errors"
	"google.golang.org/protobuf/proto"

	"secbuy/basic/buyer"
	"secbuy/payment-srv/handler"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
)

// fakeStore answers every call with payment and err, and counts the calls.
type fakeStore struct {
	payment repo.Payment
	audit   repo.Audit
	err     error
	calls   int
	gotArgs [2]int64
}

func (f *fakeStore) Pay(_ context.Context, orderID int64, who string) (repo.Payment, error) {
	f.calls++
	f.gotArgs = [2]int64{orderID, buyer.ID(who)}
	return f.payment, f.err
}

func (f *fakeStore) Get(_ context.Context, orderID int64, who string) (repo.Payment, error) {
	f.calls++
	f.gotArgs = [2]int64{orderID, buyer.ID(who)}
	return f.payment, f.err
}

func (f *fakeStore) Audit(_ context.Context, commodityID int64) (repo.Audit, error) {
	f.calls++
	f.gotArgs = [2]int64{commodityID, 0}
	return f.audit, f.err
}

var (
	created = time.Unix(1_700_000_000, 0)
	paidAt  = time.Unix(1_700_000_060, 0)
	paid    = repo.Payment{ID: 3, Sid: 12, CommodityID: 4, Name: "goods", State: repo.StatePaid,
		CreateTime: created, Buyer: "77", PaidTime: &paidAt}
	unpaid = repo.Payment{ID: 3, Sid: 12, CommodityID: 4, Name: "goods", State: repo.StateUnpaid,
		CreateTime: created, Buyer: "77"}
)

func TestPayOrderAndGetPayment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          *pb.PayRequest
		payment     repo.Payment
		storeErr    error
		wantCalled  bool
		wantCode    int32 // 0: success
		wantRPCErr  bool
		wantPayment *pb.Payment
	}{
		{name: "zero order id", in: &pb.PayRequest{Id: 0, UserId: 77}, wantCode: 400},
		{name: "negative order id", in: &pb.PayRequest{Id: -12, UserId: 77}, wantCode: 400},
		{name: "zero user id", in: &pb.PayRequest{Id: 12}, wantCode: 400},
		{name: "negative user id", in: &pb.PayRequest{Id: 12, UserId: -1}, wantCode: 400},
		{name: "not yours", in: &pb.PayRequest{Id: 12, UserId: 78}, storeErr: repo.ErrNotYours, wantCalled: true, wantCode: 403},
		{name: "unknown order", in: &pb.PayRequest{Id: 13, UserId: 77}, storeErr: repo.ErrNotFound, wantCalled: true, wantCode: 404},
		{name: "expired", in: &pb.PayRequest{Id: 12, UserId: 77}, storeErr: repo.ErrExpired, wantCalled: true, wantCode: 409},
		{name: "storage down", in: &pb.PayRequest{Id: 12, UserId: 77}, storeErr: errors.New("pay order 12: connection refused"), wantCalled: true, wantRPCErr: true},
		{name: "paid", in: &pb.PayRequest{Id: 12, UserId: 77}, payment: paid, wantCalled: true,
			wantPayment: &pb.Payment{Id: 3, Sid: 12, Name: "goods", State: 1, CreateTime: created.Unix(), UserId: 77, Buyer: "77", PaidTime: paidAt.Unix(), CommodityId: 4}},
		{name: "unpaid has paidTime 0", in: &pb.PayRequest{Id: 12, UserId: 77}, payment: unpaid, wantCalled: true,
			wantPayment: &pb.Payment{Id: 3, Sid: 12, Name: "goods", State: 0, CreateTime: created.Unix(), UserId: 77, Buyer: "77", CommodityId: 4}},
	}
	methods := map[string]func(*handler.Payment, context.Context, *pb.PayRequest, *pb.Response) error{
		"PayOrder":   (*handler.Payment).PayOrder,
		"GetPayment": (*handler.Payment).GetPayment,
	}
	for method, call := range methods {
		for _, tc := range tests {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				store := &fakeStore{payment: tc.payment, err: tc.storeErr}
				var out pb.Response
				err := call(handler.New(store), context.Background(), tc.in, &out)
				if (store.calls > 0) != tc.wantCalled {
					t.Errorf("store called %d times; want called = %v", store.calls, tc.wantCalled)
				}
				if tc.wantCalled && store.gotArgs != [2]int64{tc.in.Id, tc.in.UserId} {
					t.Errorf("store got (order, user) %v; want %v", store.gotArgs, [2]int64{tc.in.Id, tc.in.UserId})
				}
				if tc.wantRPCErr {
					if e := merrors.FromError(err); err == nil || e.Code != 500 || e.Id != pb.Name {
						t.Errorf("error = %v; want a 500 go-micro error from %s", err, pb.Name)
					}
					return
				}
				if err != nil {
					t.Fatalf("error = %v; want nil (outcomes go into the response)", err)
				}
				if tc.wantCode != 0 {
					if out.Success || out.Error == nil || out.Error.Code != tc.wantCode || out.Error.Reason == 0 || out.Payment != nil {
						t.Errorf("response = %v; want failure with code %d and no payment", &out, tc.wantCode)
					}
					return
				}
				if !out.Success || out.Error != nil {
					t.Fatalf("response = %v; want success", &out)
				}
				if got := out.Payment; !proto.Equal(got, tc.wantPayment) {
					t.Errorf("payment = %v; want %v", got, tc.wantPayment)
				}
			})
		}
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		commodity  int64
		audit      repo.Audit
		storeErr   error
		wantCalled bool
		wantCode   int32
		wantRPCErr bool
	}{
		{name: "zero commodity", commodity: 0, wantCode: 400},
		{name: "negative commodity", commodity: -4, wantCode: 400},
		{name: "storage down", commodity: 4, storeErr: errors.New("boom"), wantCalled: true, wantRPCErr: true},
		{name: "counts", commodity: 4, audit: repo.Audit{Payments: 5, Unpaid: 2, Paid: 2, Expired: 1, OrderIDSum: 15, Live: 4, LiveOrderIDSum: 12}, wantCalled: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeStore{audit: tc.audit, err: tc.storeErr}
			var out pb.AuditResponse
			err := handler.New(store).Audit(context.Background(), &pb.AuditRequest{CommodityId: tc.commodity}, &out)
			if (store.calls > 0) != tc.wantCalled {
				t.Errorf("store called %d times; want called = %v", store.calls, tc.wantCalled)
			}
			switch {
			case tc.wantRPCErr:
				if e := merrors.FromError(err); err == nil || e.Code != 500 {
					t.Errorf("error = %v; want a 500 go-micro error", err)
				}
			case err != nil:
				t.Fatalf("error = %v; want nil", err)
			case tc.wantCode != 0:
				if out.Success || out.Error == nil || out.Error.Code != tc.wantCode {
					t.Errorf("response = %v; want failure with code %d", &out, tc.wantCode)
				}
			default:
				want := &pb.AuditResponse{Success: true, Payments: 5, Unpaid: 2, Paid: 2, Expired: 1, OrderIdSum: 15, Live: 4, LiveOrderIdSum: 12}
				if !proto.Equal(&out, want) {
					t.Errorf("response = %v; want %v", &out, want)
				}
			}
		})
	}
}
