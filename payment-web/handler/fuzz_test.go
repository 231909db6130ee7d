package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go-micro.dev/v6/client"

	"secbuy/basic/auth"
	"secbuy/basic/httpapi"
	"secbuy/basic/httpapi/httpapitest"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-web/handler"
	"secbuy/proto/outcome"
)

// The two buyers of the fuzz test; the payment of order id userA is user A's, and so on.
const userA, userB = 1001, 2002

func secretOf(user int64) string { return "private-of-" + strconv.FormatInt(user, 10) }

// paymentsDB is a fake PaymentService with the real one's rule: a payment is shown and
// paid only for its owner. It records its calls.
type paymentsDB struct {
	pb.PaymentService
	calls []*pb.PayRequest
	kinds []string
}

func (d *paymentsDB) answer(kind string, in *pb.PayRequest) (*pb.Response, error) {
	d.calls, d.kinds = append(d.calls, in), append(d.kinds, kind)
	switch {
	case in.Id != userA && in.Id != userB:
		return &pb.Response{Error: outcome.Refuse(outcome.Reason_PAYMENT_NOT_FOUND)}, nil
	case in.Id != in.UserId:
		return &pb.Response{Error: outcome.Refuse(outcome.Reason_NOT_YOURS)}, nil
	}
	return &pb.Response{Success: true, Payment: &pb.Payment{Id: 1, Sid: in.Id, UserId: in.Id, Name: secretOf(in.Id), State: 1}}, nil
}

func (d *paymentsDB) PayOrder(_ context.Context, in *pb.PayRequest, _ ...client.CallOption) (*pb.Response, error) {
	return d.answer("PayOrder", in)
}

func (d *paymentsDB) GetPayment(_ context.Context, in *pb.PayRequest, _ ...client.CallOption) (*pb.Response, error) {
	return d.answer("GetPayment", in)
}

// FuzzPaymentRoutes drives payment-web's whole HTTP surface with fuzzed method, target,
// body and token: every reply is a well-formed JSON reply; payment-srv is only called for
// a valid buyer with a positive order id, in that buyer's name; no reply shows another
// buyer's payment.
func FuzzPaymentRoutes(f *testing.F) {
	for _, s := range []struct {
		method, target, body string
		who                  uint8
	}{
		{"POST", "/payment/payorder", `{"id":1001}`, 1},
		{"POST", "/payment/payorder", `{"id":2002}`, 1},
		{"POST", "/payment/payorder", `{"id":2002}`, 2},
		{"POST", "/payment/payorder", `{"id":5}`, 1},
		{"POST", "/payment/payorder", `{"id":1001}`, 0},
		{"POST", "/payment/payorder", `{"id":1001}`, 3},
		{"POST", "/payment/payorder", `{"id":1001}`, 4},
		{"POST", "/payment/payorder", `{"id":1001,"userId":2002}`, 1},
		{"POST", "/payment/payorder", `{"id":0}`, 1},
		{"POST", "/payment/payorder", `{"id":1001}{"id":2002}`, 1},
		{"POST", "/payment/payorder", `{"id":"1001"}`, 1},
		{"POST", "/payment/payorder", strings.Repeat(" ", 5000), 1},
		{"POST", "/payment/payorder?id=2002", `{"id":1001}`, 1},
		{"PUT", "/payment/payorder", `{"id":1001}`, 1},
		{"GET", "/payment/get?id=1001", ``, 1},
		{"GET", "/payment/get?id=2002", ``, 1},
		{"GET", "/payment/get?id=2002&userId=2002", ``, 1},
		{"GET", "/payment/get?id=-1", ``, 1},
		{"GET", "/payment/get?id=1e3", ``, 1},
		{"GET", "/payment/get", ``, 0},
		{"GET", "/payment//get?id=1001", ``, 1},
		{"GET", "/payment/./get?id=1001", ``, 1},
		{"OPTIONS", "/payment/get?id=1001", ``, 1},
		{"GET", "/payment/", ``, 1},
	} {
		f.Add(s.method, s.target, []byte(s.body), s.who)
	}
	for _, b := range httpapitest.HostileBodies("id") {
		f.Add("POST", "/payment/payorder", b, uint8(1))
	}
	const secret = "fuzz-secret"
	mint := func(s string, user int64, ttl time.Duration) string {
		tok, err := auth.Mint(s, user, ttl)
		if err != nil {
			f.Fatal(err)
		}
		return "Bearer " + tok
	}
	headers := []string{"", mint(secret, userA, time.Hour), mint(secret, userB, time.Hour),
		mint("wrong", userA, time.Hour), mint(secret, userA, -time.Hour), "Bearer x.y.z"}
	users := []int64{0, userA, userB, 0, 0, 0}
	db := &paymentsDB{}
	routes := handler.New(db, auth.NewVerifier(secret, 100), 4096, httpapi.NewLimiter(4, time.Millisecond)).Routes()
	f.Fuzz(func(t *testing.T, method, target string, body []byte, who uint8) {
		req, err := http.NewRequest(method, "http://payment.test"+target, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(target, "/") {
			return // not a request an HTTP server would hand to a handler
		}
		i := int(who) % len(headers)
		user := users[i]
		if headers[i] != "" {
			req.Header.Set("Authorization", headers[i])
		}
		db.calls, db.kinds = nil, nil
		w := httptest.NewRecorder()
		routes.ServeHTTP(w, req)
		reply := httpapitest.CheckReply(t, w)
		httpapitest.NoServerError(t, w)

		for j, c := range db.calls {
			if user == 0 || c.UserId != user || c.Id <= 0 {
				t.Fatalf("%s %v for user %d from %s %s", db.kinds[j], c, user, method, target)
			}
			switch db.kinds[j] {
			case "PayOrder":
				var b struct{ ID int64 }
				if req.Method != "POST" || req.URL.Path != "/payment/payorder" || json.Unmarshal(body, &b) != nil || b.ID != c.Id {
					t.Fatalf("PayOrder %v from %s %s %q", c, method, target, body)
				}
			case "GetPayment":
				n, err := strconv.ParseInt(req.URL.Query().Get("id"), 10, 64)
				if req.Method != "GET" || req.URL.Path != "/payment/get" || err != nil || n != c.Id {
					t.Fatalf("GetPayment %v from %s %s", c, method, target)
				}
			}
		}
		for _, other := range []int64{userA, userB} {
			if other != user && strings.Contains(w.Body.String(), secretOf(other)) {
				t.Fatalf("user %d was shown user %d's payment: %s", user, other, w.Body.String())
			}
		}
		if p, ok := reply["payment"].(map[string]any); ok && fmt.Sprint(p["userId"]) != strconv.FormatInt(user, 10) {
			t.Fatalf("user %d was shown a payment of user %v: %s", user, p["userId"], w.Body.String())
		}
	})
}
