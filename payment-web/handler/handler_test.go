package handler_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/auth"
	"secbuy/basic/httpapi/httpapitest"
	"secbuy/basic/testutil"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-web/handler"
	"secbuy/proto/outcome"
)

const secret = "test-secret"

// fakePayments answers PayOrder and GetPayment with rsp and err, and records the calls.
type fakePayments struct {
	rsp   *pb.Response
	err   error
	calls []string
	got   *pb.PayRequest
}

func (f *fakePayments) PayOrder(_ context.Context, in *pb.PayRequest, _ ...client.CallOption) (*pb.Response, error) {
	f.calls = append(f.calls, "PayOrder")
	f.got = in
	return f.rsp, f.err
}

func (f *fakePayments) GetPayment(_ context.Context, in *pb.PayRequest, _ ...client.CallOption) (*pb.Response, error) {
	f.calls = append(f.calls, "GetPayment")
	f.got = in
	return f.rsp, f.err
}

func (f *fakePayments) Audit(context.Context, *pb.AuditRequest, ...client.CallOption) (*pb.AuditResponse, error) {
	f.calls = append(f.calls, "Audit")
	return nil, merrors.InternalServerError("fake", "not used")
}

type reply struct {
	Success bool               `json:"success"`
	Error   *httpapitest.Error `json:"error"`
	Payment *handler.Payment   `json:"payment"`
}

func serve(t *testing.T, fake *fakePayments, method, target, body, authz string) (*httptest.ResponseRecorder, reply) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	handler.New(fake, auth.NewVerifier(secret, 100), 4096, nil).Routes().ServeHTTP(w, req)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q; want JSON", ct)
	}
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	var r reply
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("reply is not the JSON reply shape: %v", err)
	}
	return w, r
}

func TestBadRequestsNeverReachTheService(t *testing.T) {
	t.Parallel()
	good := testutil.Bearer(t, secret, 77, time.Hour)
	expired := testutil.Bearer(t, secret, 77, -time.Minute)
	forged := testutil.Bearer(t, "another-secret", 77, time.Hour)
	huge := `{"id":` + strings.Repeat(" ", 10<<20) + `1}`
	tests := []struct {
		name, method, target, body, authz string
		want                              int
	}{
		{"pay: malformed JSON", "POST", "/payment/payorder", `{"id":`, good, 400},
		{"pay: not JSON", "POST", "/payment/payorder", `id=1`, good, 400},
		{"pay: empty body", "POST", "/payment/payorder", ``, good, 400},
		{"pay: array", "POST", "/payment/payorder", `[1]`, good, 400},
		{"pay: id as string", "POST", "/payment/payorder", `{"id":"1"}`, good, 400},
		{"pay: id as fraction", "POST", "/payment/payorder", `{"id":1.5}`, good, 400},
		{"pay: id as bool", "POST", "/payment/payorder", `{"id":true}`, good, 400},
		{"pay: id null", "POST", "/payment/payorder", `{"id":null}`, good, 400},
		{"pay: missing id", "POST", "/payment/payorder", `{}`, good, 400},
		{"pay: extra field", "POST", "/payment/payorder", `{"id":1,"userId":2}`, good, 400},
		{"pay: trailing data", "POST", "/payment/payorder", `{"id":1}{"id":2}`, good, 400},
		{"pay: trailing garbage", "POST", "/payment/payorder", `{"id":1} x`, good, 400},
		{"pay: zero id", "POST", "/payment/payorder", `{"id":0}`, good, 400},
		{"pay: negative id", "POST", "/payment/payorder", `{"id":-5}`, good, 400},
		{"pay: huge id", "POST", "/payment/payorder", `{"id":99999999999999999999}`, good, 400},
		{"pay: 10 MB body", "POST", "/payment/payorder", huge, good, 413},
		{"pay: GET", "GET", "/payment/payorder", ``, good, 405},
		{"pay: PUT", "PUT", "/payment/payorder", `{"id":1}`, good, 405},
		{"pay: no token", "POST", "/payment/payorder", `{"id":1}`, "", 401},
		{"pay: not bearer", "POST", "/payment/payorder", `{"id":1}`, "Basic dXNlcjpwYXNz", 401},
		{"pay: empty bearer", "POST", "/payment/payorder", `{"id":1}`, "Bearer ", 401},
		{"pay: garbage token", "POST", "/payment/payorder", `{"id":1}`, "Bearer abc.def.ghi", 401},
		{"pay: forged token", "POST", "/payment/payorder", `{"id":1}`, forged, 401},
		{"pay: expired token", "POST", "/payment/payorder", `{"id":1}`, expired, 401},
		{"get: missing id", "GET", "/payment/get", ``, good, 400},
		{"get: id not a number", "GET", "/payment/get?id=abc", ``, good, 400},
		{"get: zero id", "GET", "/payment/get?id=0", ``, good, 400},
		{"get: negative id", "GET", "/payment/get?id=-1", ``, good, 400},
		{"get: fraction id", "GET", "/payment/get?id=1.5", ``, good, 400},
		{"get: huge id", "GET", "/payment/get?id=99999999999999999999", ``, good, 400},
		{"get: POST", "POST", "/payment/get?id=1", `{"id":1}`, good, 405},
		{"get: no token", "GET", "/payment/get?id=1", ``, "", 401},
		{"get: forged token", "GET", "/payment/get?id=1", ``, forged, 401},
		{"get: expired token", "GET", "/payment/get?id=1", ``, expired, 401},
		{"unknown path", "GET", "/payment/list", ``, good, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakePayments{rsp: &pb.Response{Success: true, Payment: &pb.Payment{Id: 1}}}
			w, r := serve(t, fake, tc.method, tc.target, tc.body, tc.authz)
			if w.Code != tc.want {
				t.Errorf("status = %d; want %d", w.Code, tc.want)
			}
			if r.Success || r.Error == nil || r.Error.Code != tc.want || r.Error.Detail == "" || r.Payment != nil {
				t.Errorf("reply = %+v (error %+v); want success false with error code %d", r, r.Error, tc.want)
			}
			if len(fake.calls) != 0 {
				t.Errorf("service called %v; want no call", fake.calls)
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	paid := &pb.Payment{Id: 3, Sid: 12, Name: "goods", State: 1, CreateTime: 1_700_000_000, UserId: 77, PaidTime: 1_700_000_060, CommodityId: 4}
	wantPaid := &handler.Payment{ID: 3, Sid: 12, Name: "goods", State: 1, CreateTime: 1_700_000_000, UserID: 77, Buyer: "77", PaidTime: 1_700_000_060, CommodityID: 4}
	fail := func(reason outcome.Reason) *pb.Response {
		return &pb.Response{Error: outcome.Refuse(reason)}
	}
	tests := []struct {
		name        string
		rsp         *pb.Response
		err         error
		want        int
		wantPayment *handler.Payment
	}{
		{"paid", &pb.Response{Success: true, Payment: paid}, nil, 200, wantPaid},
		{"someone else's order", fail(outcome.Reason_NOT_YOURS), nil, 403, nil},
		{"unknown order", fail(outcome.Reason_PAYMENT_NOT_FOUND), nil, 404, nil},
		{"expired", fail(outcome.Reason_PAYMENT_EXPIRED), nil, 409, nil},
		{"service error", nil, merrors.InternalServerError("go.micro.secbuy.srv.payment", "storage unavailable"), 503, nil},
		{"service timeout", nil, merrors.Timeout("go.micro.client", "request timeout"), 503, nil},
		{"service not found", nil, merrors.InternalServerError("go.micro.client", "service go.micro.secbuy.srv.payment: not found"), 503, nil},
	}
	routes := []struct {
		method, target, body, call string
	}{
		{"POST", "/payment/payorder", `{"id":12}`, "PayOrder"},
		{"GET", "/payment/get?id=12", ``, "GetPayment"},
	}
	for _, route := range routes {
		for _, tc := range tests {
			t.Run(route.call+"/"+tc.name, func(t *testing.T) {
				fake := &fakePayments{rsp: tc.rsp, err: tc.err}
				w, r := serve(t, fake, route.method, route.target, route.body, testutil.Bearer(t, secret, 77, time.Hour))
				if w.Code != tc.want {
					t.Errorf("status = %d; want %d", w.Code, tc.want)
				}
				if len(fake.calls) != 1 || fake.calls[0] != route.call {
					t.Fatalf("service calls = %v; want one %s", fake.calls, route.call)
				}
				if fake.got.Id != 12 || fake.got.UserId != 77 {
					t.Errorf("service got id %d, userId %d; want order 12 of user 77 (from the token)", fake.got.Id, fake.got.UserId)
				}
				if tc.wantPayment != nil {
					if !r.Success || r.Error != nil || r.Payment == nil || *r.Payment != *tc.wantPayment {
						t.Errorf("reply = %+v, payment %+v; want success with %+v", r, r.Payment, tc.wantPayment)
					}
					return
				}
				if r.Success || r.Error == nil || r.Error.Code != tc.want || r.Error.Detail == "" || r.Payment != nil {
					t.Errorf("reply = %+v (error %+v); want success false with error code %d", r, r.Error, tc.want)
				}
			})
		}
	}
}

// TestPaymentJSON pins the field names and that numbers are JSON numbers.
func TestPaymentJSON(t *testing.T) {
	t.Parallel()
	fake := &fakePayments{rsp: &pb.Response{Success: true, Payment: &pb.Payment{
		Id: 3, Sid: 12, Name: "goods", State: 1, CreateTime: 100, UserId: 77, PaidTime: 160, CommodityId: 4}}}
	req := httptest.NewRequest("POST", "/payment/payorder", strings.NewReader(`{"id":12}`))
	req.Header.Set("Authorization", testutil.Bearer(t, secret, 77, time.Hour))
	w := httptest.NewRecorder()
	handler.New(fake, auth.NewVerifier(secret, 100), 4096, nil).Routes().ServeHTTP(w, req)
	want := `{"payment":{"id":3,"sid":12,"name":"goods","state":1,"createTime":100,"userId":77,"buyer":"77","paidTime":160,"commodityId":4},"success":true}`
	if got := strings.TrimSpace(w.Body.String()); got != want {
		t.Errorf("body = %s; want %s", got, want)
	}
}
