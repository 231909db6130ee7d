package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"secbuy/test/load"
	"secbuy/test/suite"
)

// TestHostileText: a NUL or invalid UTF-8 in a name, a duplicate or unknown key, sent over
// HTTP or straight to the RPC with the go-micro CLI (as the README does), is a 400 whose
// detail names the field, never "busy, try again"; no commodity, sale or order appears.
func TestHostileText(t *testing.T) {
	s, cfg := newSale(t, 1, 5)
	c := load.Client(2)
	id, err := createCommodity(cfg, c, 5)
	if err != nil {
		t.Fatal(err)
	}
	other, err := createCommodity(cfg, c, 5)
	if err != nil {
		t.Fatal(err)
	}
	a := load.NewAuditor(cfg.NATSURL)
	audit := func() [3]load.Audit {
		t.Helper()
		var out [3]load.Audit
		for i, sid := range []int64{id, other} {
			if out[i], err = a.Audit(context.Background(), sid); err != nil {
				t.Fatal(err)
			}
		}
		var list struct {
			Commodities []struct{ ID int64 } `json:"commodities"`
		}
		if code, err := load.Do(c, "GET", s.URL("stock-web")+"/stock/list?limit=1000", "", nil, &list); err != nil || code != 200 {
			t.Fatalf("list: %d %v", code, err)
		}
		out[2].Count = int64(len(list.Commodities))
		return out
	}
	before := audit()
	user := cfg.UserBase + 7

	for _, tc := range []struct {
		name, route, body, want string
	}{
		{"NUL in a name", "/stock/create", `{"name":"a\u0000b","count":1}`, "name: contains a NUL character"},
		{"invalid UTF-8 in a name", "/stock/create", "{\"name\":\"a\xffb\",\"count\":1}", "name: not valid UTF-8"},
		{"lone surrogate in a name", "/stock/create", `{"name":"\udc00","count":1}`, "name: not valid UTF-8"},
		{"control character in a name", "/stock/create", `{"name":"a\u0007","count":1}`, "name: contains a control character (U+0007)"},
		{"duplicate name", "/stock/create", `{"name":"a","name":"b","count":1}`, "name: duplicate key"},
		{"unknown field", "/stock/create", `{"name":"a","count":1,"price":3}`, `unknown field "price"`},
		{"duplicate id", "/order/sell", fmt.Sprintf(`{"id":%d,"id":%d}`, id, other), "id: duplicate key"},
		{"unknown field on a buy", "/order/sell", fmt.Sprintf(`{"id":%d,"userId":1}`, id), `unknown field "userId"`},
		{"duplicate id on a payment", "/payment/payorder", `{"id":1,"id":2}`, "id: duplicate key"},
	} {
		t.Run("HTTP "+tc.name, func(t *testing.T) {
			web := map[string]string{"/stock/create": "stock-web", "/order/sell": "order-web", "/payment/payorder": "payment-web"}[tc.route]
			req, _ := http.NewRequest("POST", s.URL(web)+tc.route, strings.NewReader(tc.body))
			req.Header.Set("X-Admin-Key", suite.AdminKey)
			req.Header.Set("Authorization", "Bearer "+s.Token(user))
			rsp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer rsp.Body.Close()
			b, _ := io.ReadAll(rsp.Body)
			var rep struct {
				Error struct {
					Code   int    `json:"code"`
					Detail string `json:"detail"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &rep); err != nil || rsp.StatusCode != 400 || rep.Error.Code != 400 || rep.Error.Detail != tc.want {
				t.Errorf("status %d %s; want 400 %q", rsp.StatusCode, b, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name, endpoint, body, want string
	}{
		{"NUL in a name", "StockService.CreateCommodity", `{"name":"a\u0000b","count":1}`, "name: contains a NUL character"},
		{"invalid UTF-8 in a name", "StockService.CreateCommodity", "{\"name\":\"a\xffb\",\"count\":1}", "name: not valid UTF-8"},
		{"duplicate name", "StockService.CreateCommodity", `{"name":"a","name":"b","count":1}`, "name: duplicate key"},
		{"NUL in a request id", "StockService.Sell", fmt.Sprintf(`{"id":%d,"userId":1,"requestId":"r\u0000"}`, id), "requestId must be 1 to 128 bytes of UTF-8 text"},
		{"duplicate id", "StockService.Sell", fmt.Sprintf(`{"id":%d,"id":%d,"userId":1,"requestId":"r"}`, id, other), "id: duplicate key"},
	} {
		t.Run("RPC "+tc.name, func(t *testing.T) {
			out, _ := s.Micro("call", "go.micro.secbuy.srv.stock", tc.endpoint, tc.body)
			// A refusal in the response ({"error":{...}}) or go-micro's own 400 ({"code":400,...}).
			var rep struct {
				Code   int    `json:"code"`
				Detail string `json:"detail"`
				Error  *struct {
					Code   int    `json:"code"`
					Detail string `json:"detail"`
				} `json:"error"`
			}
			i := strings.Index(out, "{")
			if i < 0 || json.Unmarshal([]byte(out[i:]), &rep) != nil {
				t.Fatalf("micro call: %q", out)
			}
			if rep.Error != nil {
				rep.Code, rep.Detail = rep.Error.Code, rep.Error.Detail
			}
			if rep.Code != 400 || rep.Detail != tc.want {
				t.Errorf("micro call: %q; want 400 %q", out, tc.want)
			}
		})
	}

	if after := audit(); after != before {
		t.Errorf("hostile text changed the state: before %v, after %v", before, after)
	}
	// Everything still answers a good request.
	if r := load.Buy(context.Background(), c, cfg, s.Token(user), user, id, ""); r.Reason != "ok" {
		t.Errorf("a good buy after the hostile text: %+v", r)
	}
	if _, err := load.CreateCommodity(context.Background(), c, cfg, "商品 ok", 1); err != nil {
		t.Errorf("a good create after the hostile text: %v", err)
	}
}
