package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go-micro.dev/v6/client"

	"secbuy/basic/httpapi/httpapitest"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

// stockDB is a fake StockService that answers like the real one and records its calls.
type stockDB struct {
	pb.StockService
	mu    sync.Mutex
	calls []any
}

func (d *stockDB) record(in any) {
	d.mu.Lock()
	d.calls = append(d.calls, in)
	d.mu.Unlock()
}

func (d *stockDB) take() []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

func (d *stockDB) CreateCommodity(_ context.Context, in *pb.Commodity, _ ...client.CallOption) (*pb.Response, error) {
	d.record(in)
	if in.Name == "" || in.Count < 0 {
		return &pb.Response{Error: outcome.Invalid("bad commodity")}, nil
	}
	return &pb.Response{Success: true, Commodity: &pb.Commodity{Id: 9, Name: in.Name, Count: in.Count, Sale: in.Sale,
		StartTime: in.StartTime, EndTime: in.EndTime}}, nil
}

func (d *stockDB) GetCommodity(_ context.Context, in *pb.Request, _ ...client.CallOption) (*pb.Response, error) {
	d.record(in)
	if in.Id%2 == 0 {
		return &pb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)}, nil
	}
	return &pb.Response{Success: true, Commodity: &pb.Commodity{Id: in.Id, Name: "x", Count: 3}}, nil
}

func (d *stockDB) ListCommodities(_ context.Context, in *pb.ListRequest, _ ...client.CallOption) (*pb.ListResponse, error) {
	d.record(in)
	return &pb.ListResponse{Success: true, Commodities: []*pb.Commodity{{Id: 1, Name: "x", Count: 3}}}, nil
}

// FuzzStockRoutes drives stock-web's whole HTTP surface with fuzzed method, target, body
// and admin key: every reply but the page's files is a well-formed JSON reply; stock-srv
// is asked to create only with the admin key and a body that decodes strictly, to get or
// list only with the numbers the query holds, each in range, and for the shop's stats
// only with the admin key.
func FuzzStockRoutes(f *testing.F) {
	for _, s := range []struct {
		method, target, body string
		admin                bool
	}{
		{"POST", "/stock/create", `{"name":"商品","count":10,"sale":0}`, true},
		{"POST", "/stock/create", `{"name":"x","count":10}`, false},
		{"POST", "/stock/create", `{"name":"x","count":-1,"startTime":5,"endTime":1}`, true},
		{"POST", "/stock/create", `{"name":"x","count":1,"id":5}`, true},
		{"POST", "/stock/create", `{"name":"x","count":"1"}`, true},
		{"POST", "/stock/create", `{"name":"` + strings.Repeat("a", 5000) + `"}`, true},
		{"POST", "/stock/create", `{"name":"\u0000<script>"}`, true},
		{"GET", "/stock/create", ``, true},
		{"GET", "/stock/get?id=1", ``, false},
		{"GET", "/stock/get?id=2", ``, false},
		{"GET", "/stock/get?id=-1", ``, false},
		{"GET", "/stock/get?id=9223372036854775807", ``, false},
		{"GET", "/stock/get?id=9223372036854775808", ``, false},
		{"GET", "/stock/get?id=1;drop table stock", ``, false},
		{"GET", "/stock/list", ``, false},
		{"GET", "/stock/list?offset=5&limit=10", ``, false},
		{"GET", "/stock/list?offset=-5", ``, false},
		{"GET", "/stock/list?limit=99999999999999999999", ``, false},
		{"GET", "/stock/list?limit=%zz", ``, false},
		{"DELETE", "/stock/list", ``, true},
		{"GET", "/stock/../stock/list", ``, false},
		{"GET", "/stock", ``, false},
		{"GET", "/admin", ``, false},
		{"GET", "/admin/", ``, false},
		{"GET", "/admin/app.js", ``, false},
		{"GET", "/admin/stats", ``, false},
		{"GET", "/admin/stats", ``, true},
		{"POST", "/admin/stats", `{}`, true},
		{"POST", "/admin/signin", `{"key":"` + adminKey + `"}`, false},
		{"POST", "/admin/signin", `{"key":"nope"}`, false},
		{"POST", "/admin/signin", `{"key":1}`, false},
		{"POST", "/admin/signout", ``, false},
	} {
		f.Add(s.method, s.target, []byte(s.body), s.admin)
	}
	for _, field := range []string{"name", "count"} {
		for _, b := range httpapitest.HostileBodies(field) {
			f.Add("POST", "/stock/create", b, true)
		}
	}
	for _, b := range httpapitest.HostileBodies("key") {
		f.Add("POST", "/admin/signin", b, false)
	}
	db := &stockDB{}
	routes := New(db, adminKey, 4096).Routes()
	f.Fuzz(func(t *testing.T, method, target string, body []byte, admin bool) {
		req, err := http.NewRequest(method, "http://stock.test"+target, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(target, "/") {
			return // not a request an HTTP server would hand to a handler
		}
		if admin {
			req.Header.Set("X-Admin-Key", adminKey)
		}
		w := httptest.NewRecorder()
		routes.ServeHTTP(w, req)
		if req.Method == "GET" && pageFiles[req.URL.Path] && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			if w.Code != 200 || w.Header().Get("Content-Security-Policy") == "" {
				t.Fatalf("GET %s: %d, CSP %q; want the page's file with its policy", target, w.Code, w.Header().Get("Content-Security-Policy"))
			}
		} else {
			httpapitest.CheckReply(t, w)
		}
		httpapitest.NoServerError(t, w)

		q := req.URL.Query()
		for _, c := range db.take() {
			switch c := c.(type) {
			case *pb.Commodity:
				var b createBody
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				if !admin || req.Method != "POST" || req.URL.Path != "/stock/create" || dec.Decode(&b) != nil ||
					c.Name != b.Name || c.Count != b.Count || c.Sale != b.Sale || c.StartTime != b.StartTime || c.EndTime != b.EndTime {
					t.Fatalf("CreateCommodity %v from %s %s %q (admin %v)", c, method, target, body, admin)
				}
			case *pb.Request:
				if req.Method != "GET" || req.URL.Path != "/stock/get" || c.Id <= 0 || !isNumber(q.Get("id"), c.Id) {
					t.Fatalf("GetCommodity %v from %s %s", c, method, target)
				}
			case *pb.ListRequest:
				if req.URL.Path == "/admin/stats" {
					if !admin || req.Method != "GET" || !c.Newest || c.Limit != statsList || c.Offset != 0 {
						t.Fatalf("ListCommodities %v from %s %s (admin %v)", c, method, target, admin)
					}
					continue
				}
				if req.Method != "GET" || req.URL.Path != "/stock/list" || c.Offset < 0 || c.Limit < 0 ||
					!isNumber(q.Get("offset"), c.Offset) || !isNumber(q.Get("limit"), c.Limit) {
					t.Fatalf("ListCommodities %v from %s %s", c, method, target)
				}
			default:
				t.Fatalf("unexpected call %T", c)
			}
		}
	})
}

// pageFiles are the shop's page's files: HTML, JS and CSS, not JSON replies.
var pageFiles = map[string]bool{"/admin": true, "/admin/app.js": true, "/admin/app.css": true}

// isNumber says whether s is a decimal form of n ("" stands for 0).
func isNumber(s string, n int64) bool {
	if s == "" {
		return n == 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return err == nil && v == n
}
