package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"secbuy/test/load"
	"secbuy/test/suite"
)

type commodityReply struct {
	Success   bool `json:"success"`
	Commodity struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Count int64  `json:"count"`
		Sale  int64  `json:"sale"`
	} `json:"commodity"`
	Error *struct {
		Code   int    `json:"code"`
		Detail string `json:"detail"`
	} `json:"error"`
}

// TestStockPair starts stock-srv and stock-web as processes, creates a commodity with the
// go-micro CLI as the README does (bin/micro), and reads it back over HTTP.
func TestStockPair(t *testing.T) {
	suite.Build(t, "micro") // before the registry's wait below starts counting
	s := suite.New(t, nil, "stock-srv", "stock-web")

	var out string
	// The registry needs a moment to carry stock-srv's registration.
	err := suite.Eventually(20e9, func() error {
		var err error
		out, err = s.Micro("call", "go.micro.secbuy.srv.stock", "StockService.CreateCommodity", `{"name":"商品","count":10,"sale":0}`)
		if err != nil || !strings.Contains(out, `"success":true`) {
			return errors.Join(fmt.Errorf("micro call: %s", out), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Commodity struct {
			ID string `json:"id"` // the CLI prints int64 as a string
		} `json:"commodity"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &created); err != nil {
		t.Fatalf("micro output %q: %v", out, err)
	}
	id, _ := strconv.ParseInt(created.Commodity.ID, 10, 64)
	if id <= 0 {
		t.Fatalf("no id in %q", out)
	}

	var got commodityReply
	code, err := load.Do(http.DefaultClient, "GET", fmt.Sprintf("%s/stock/get?id=%d", s.URL("stock-web"), id), "", nil, &got)
	if err != nil || code != 200 {
		t.Fatalf("GET /stock/get: %d %v", code, err)
	}
	if !got.Success || got.Commodity.ID != id || got.Commodity.Name != "商品" || got.Commodity.Count != 10 || got.Commodity.Sale != 0 {
		t.Errorf("got %+v", got)
	}

	// The same through the admin HTTP route, then the list shows both.
	code, err = load.Do(http.DefaultClient, "POST", s.URL("stock-web")+"/stock/create", "", []byte(`{"name":"x","count":5}`), &got)
	if err != nil || code != 401 {
		t.Errorf("create without admin key: %d %v, want 401", code, err)
	}
	req, _ := http.NewRequest("POST", s.URL("stock-web")+"/stock/create", strings.NewReader(`{"name":"手机","count":5}`))
	req.Header.Set("X-Admin-Key", suite.AdminKey)
	rsp, err := http.DefaultClient.Do(req)
	if err != nil || rsp.StatusCode != 200 {
		t.Fatalf("admin create: %v %v", rsp, err)
	}
	rsp.Body.Close()
	var list struct {
		Commodities []struct{ Name string } `json:"commodities"`
	}
	if code, err := load.Do(http.DefaultClient, "GET", s.URL("stock-web")+"/stock/list", "", nil, &list); err != nil || code != 200 || len(list.Commodities) != 2 {
		t.Errorf("list: %d %v %+v", code, err, list)
	}

	// Bad input through the CLI: a clear error, nothing created.
	out, _ = s.Micro("call", "go.micro.secbuy.srv.stock", "StockService.CreateCommodity", `{"name":"","count":10}`)
	if !strings.Contains(out, "name must not be empty") {
		t.Errorf("empty name through the CLI: %q", out)
	}
	code, _ = load.Do(http.DefaultClient, "GET", fmt.Sprintf("%s/stock/get?id=%d", s.URL("stock-web"), id+2), "", nil, &got)
	if code != 404 {
		t.Errorf("the refused commodity exists: %d %+v", code, got)
	}
}
