package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"secbuy/basic/auth"
	"secbuy/test/load"
	"secbuy/test/suite"
)

// TestHostileInput sends bad input to every route of the running suite: each gets a 4xx
// JSON error without a stack trace, nothing changes, and every service still answers.
func TestHostileInput(t *testing.T) {
	s, cfg := newSale(t, 1, 5)
	c := load.Client(4)
	id, err := createCommodity(cfg, c, 5)
	if err != nil {
		t.Fatal(err)
	}
	user := cfg.UserBase + 1
	r := load.Buy(context.Background(), c, cfg, s.Token(user), user, id, "")
	if r.Reason != "ok" {
		t.Fatalf("buy: %+v", r)
	}
	a := load.NewAuditor(cfg.NATSURL)
	var before load.Audit
	err = suite.Eventually(10*time.Second, func() error { // the payment arrives asynchronously
		var err error
		if before, err = a.Audit(context.Background(), id); err == nil && before.Payments != 1 {
			err = fmt.Errorf("no payment yet: %v", before)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	good := s.Token(user + 1)
	forged, _ := auth.Mint("not-the-secret", user+1, time.Hour)
	expired, _ := auth.Mint(suite.AuthSecret, user+1, -time.Minute)
	tenMB := append([]byte(`{"id":`), bytes.Repeat([]byte("1"), 10<<20)...)
	tenMB = append(tenMB, '}')

	bodies := map[string][]byte{
		"malformed":   []byte(`{"id":`),
		"not json":    []byte(`id=1`),
		"empty":       nil,
		"string id":   []byte(fmt.Sprintf(`{"id":"%d"}`, id)),
		"float id":    []byte(`{"id":1.5}`),
		"missing id":  []byte(`{}`),
		"extra field": []byte(fmt.Sprintf(`{"id":%d,"userId":1}`, id)),
		"negative id": []byte(`{"id":-1}`),
		"zero id":     []byte(`{"id":0}`),
		"huge id":     []byte(`{"id":99999999999999999999}`),
		"array":       []byte(`[1]`),
		"null":        []byte(`null`),
		"two objects": []byte(fmt.Sprintf(`{"id":%d}{"id":%d}`, id, id)),
		"10 MB":       tenMB,
		"two ids":     []byte(fmt.Sprintf(`{"id":%d,"id":%d}`, id, id+1)),
		"bad UTF-8":   []byte("{\"id\":1,\"\xff\":1}"),
	}
	type req struct {
		name, method, url, token string
		body                     []byte
	}
	var reqs []req
	for _, route := range []string{s.URL("order-web") + "/order/sell", s.URL("payment-web") + "/payment/payorder"} {
		for name, b := range bodies {
			reqs = append(reqs, req{name, "POST", route, good, b})
		}
		ok := []byte(fmt.Sprintf(`{"id":%d}`, r.OrderID))
		reqs = append(reqs,
			req{"no token", "POST", route, "", ok},
			req{"forged token", "POST", route, forged, ok},
			req{"expired token", "POST", route, expired, ok},
			req{"garbage token", "POST", route, "a.b.c", ok},
			req{"wrong method", "GET", route, good, nil},
			req{"wrong method", "PUT", route, good, ok},
		)
	}
	for _, get := range []string{s.URL("order-web") + "/order/get", s.URL("payment-web") + "/payment/get", s.URL("stock-web") + "/stock/get"} {
		for _, q := range []string{"", "?id=", "?id=abc", "?id=-1", "?id=0", "?id=99999999999999999999", "?id=1%00"} {
			reqs = append(reqs, req{"query " + q, "GET", get + q, good, nil})
		}
		reqs = append(reqs, req{"wrong method", "DELETE", get + "?id=1", good, nil})
	}
	reqs = append(reqs,
		req{"create without admin key", "POST", s.URL("stock-web") + "/stock/create", good, []byte(`{"name":"x","count":1}`)},
		req{"unknown route", "GET", s.URL("order-web") + "/admin", good, nil},
		req{"unknown route", "GET", s.URL("payment-web") + "/debug/pprof/", good, nil},
	)

	for _, q := range reqs {
		t.Run(q.name+" "+q.method+" "+q.url, func(t *testing.T) {
			hr, _ := http.NewRequest(q.method, q.url, bytes.NewReader(q.body))
			if q.token != "" {
				hr.Header.Set("Authorization", "Bearer "+q.token)
			}
			rsp, err := c.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer rsp.Body.Close()
			b, _ := io.ReadAll(rsp.Body)
			var rep struct {
				Success bool `json:"success"`
				Error   *struct {
					Code   int    `json:"code"`
					Detail string `json:"detail"`
				} `json:"error"`
			}
			if rsp.StatusCode < 400 || rsp.StatusCode > 499 {
				t.Errorf("status %d, want 4xx: %.200s", rsp.StatusCode, b)
			}
			if err := json.Unmarshal(b, &rep); err != nil || rep.Success || rep.Error == nil || rep.Error.Code != rsp.StatusCode {
				t.Errorf("reply %.200q is not a JSON error with code %d", b, rsp.StatusCode)
			}
			if strings.Contains(string(b), "goroutine") || strings.Contains(string(b), ".go:") {
				t.Errorf("reply leaks a stack trace: %.300s", b)
			}
		})
	}

	after, err := a.Audit(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("hostile input changed the state: before %v, after %v", before, after)
	}
	// Every service still answers a good request.
	if r := load.Buy(context.Background(), c, cfg, good, user+1, id, ""); r.Reason != "ok" {
		t.Errorf("a good buy after the hostile input: %+v", r)
	}
}
