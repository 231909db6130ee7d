package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/httpapi/httpapitest"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

const adminKey = "test-admin"

// fakeStock answers every call with rsp/err and counts calls. The embedded interface
// stands for the methods stock-web never calls (calling one panics).
type fakeStock struct {
	pb.StockService
	calls int
	rsp   *pb.Response
	err   error
	last  *pb.Commodity
}

func (f *fakeStock) CreateCommodity(_ context.Context, in *pb.Commodity, _ ...client.CallOption) (*pb.Response, error) {
	f.calls++
	f.last = in
	return f.rsp, f.err
}
func (f *fakeStock) GetCommodity(context.Context, *pb.Request, ...client.CallOption) (*pb.Response, error) {
	f.calls++
	return f.rsp, f.err
}
func (f *fakeStock) ListCommodities(_ context.Context, in *pb.ListRequest, _ ...client.CallOption) (*pb.ListResponse, error) {
	f.calls++
	if in.Limit > 1000 {
		return &pb.ListResponse{Error: outcome.Invalid("limit between 0 and 1000")}, nil
	}
	return &pb.ListResponse{Success: true, Commodities: []*pb.Commodity{{Id: 1, Name: "a", Count: 2}}}, f.err
}
func (f *fakeStock) Sell(context.Context, *pb.SellRequest, ...client.CallOption) (*pb.Response, error) {
	f.calls++
	return f.rsp, f.err
}
func (f *fakeStock) Audit(context.Context, *pb.Request, ...client.CallOption) (*pb.AuditResponse, error) {
	f.calls++
	return nil, f.err
}

type reply struct {
	Success bool `json:"success"`
	Error   *struct {
		Code   int    `json:"code"`
		Detail string `json:"detail"`
	} `json:"error"`
	Commodity   *Commodity   `json:"commodity"`
	Commodities []*Commodity `json:"commodities"`
}

func do(t *testing.T, f *fakeStock, method, target, key string, body []byte) (int, reply) {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if key != "" {
		r.Header.Set("X-Admin-Key", key)
	}
	w := httptest.NewRecorder()
	New(f, adminKey, 4096).Routes().ServeHTTP(w, r)
	var rep reply
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content type %q, want JSON", ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatalf("reply is not JSON: %q", w.Body.String())
	}
	return w.Code, rep
}

func TestBadRequestsNeverReachStockSrv(t *testing.T) {
	t.Parallel()
	huge := append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), 10<<20)...)
	huge = append(huge, `","count":1}`...)
	for _, c := range []struct {
		name, method, target, key string
		body                      []byte
		want                      int
	}{
		{"create without key", "POST", "/stock/create", "", []byte(`{"name":"x","count":1}`), 401},
		{"create wrong key", "POST", "/stock/create", "nope", []byte(`{"name":"x","count":1}`), 401},
		{"create malformed", "POST", "/stock/create", adminKey, []byte(`{"name":`), 400},
		{"create empty body", "POST", "/stock/create", adminKey, nil, 400},
		{"create wrong type", "POST", "/stock/create", adminKey, []byte(`{"name":"x","count":"10"}`), 400},
		{"create float count", "POST", "/stock/create", adminKey, []byte(`{"name":"x","count":1.5}`), 400},
		{"create extra field", "POST", "/stock/create", adminKey, []byte(`{"name":"x","count":1,"admin":true}`), 400},
		{"create huge number", "POST", "/stock/create", adminKey, []byte(`{"name":"x","count":99999999999999999999}`), 400},
		{"create trailing", "POST", "/stock/create", adminKey, []byte(`{"name":"x","count":1}{}`), 400},
		{"create array", "POST", "/stock/create", adminKey, []byte(`[1,2]`), 400},
		{"create 10 MB", "POST", "/stock/create", adminKey, huge, 413},
		{"create with GET", "GET", "/stock/create", adminKey, nil, 405},
		{"get no id", "GET", "/stock/get", "", nil, 400},
		{"get text id", "GET", "/stock/get?id=abc", "", nil, 400},
		{"get zero id", "GET", "/stock/get?id=0", "", nil, 400},
		{"get negative id", "GET", "/stock/get?id=-4", "", nil, 400},
		{"get huge id", "GET", "/stock/get?id=99999999999999999999", "", nil, 400},
		{"get with POST", "POST", "/stock/get?id=1", "", nil, 405},
		{"list bad offset", "GET", "/stock/list?offset=-1", "", nil, 400},
		{"list bad limit", "GET", "/stock/list?limit=x", "", nil, 400},
		{"list with DELETE", "DELETE", "/stock/list", "", nil, 405},
		{"unknown route", "GET", "/stock/../etc/passwd", "", nil, 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeStock{}
			code, rep := do(t, f, c.method, c.target, c.key, c.body)
			if code != c.want || rep.Success || rep.Error == nil || rep.Error.Code != c.want {
				t.Errorf("got %d %+v, want %d with an error body", code, rep, c.want)
			}
			if f.calls != 0 {
				t.Errorf("stock-srv called %d times", f.calls)
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	commodity := &pb.Commodity{Id: 5, Name: "商品", Count: 10, Sale: 2, CreateTime: 100}
	for _, c := range []struct {
		name string
		rsp  *pb.Response
		err  error
		want int
	}{
		{"found", &pb.Response{Success: true, Commodity: commodity}, nil, 200},
		{"not found", &pb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)}, nil, 404},
		{"bad input", &pb.Response{Error: outcome.Invalid("name must not be empty")}, nil, 400},
		{"srv down", nil, merrors.InternalServerError("x", "storage unavailable"), 503},
		{"srv slow", nil, merrors.Timeout("x", "timeout"), 503},
		{"srv missing", nil, errors.New("service not found"), 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeStock{rsp: c.rsp, err: c.err}
			code, rep := do(t, f, "GET", "/stock/get?id=5", "", nil)
			if code != c.want {
				t.Fatalf("status %d, want %d (%+v)", code, c.want, rep)
			}
			if c.want == 200 && (rep.Commodity == nil || rep.Commodity.Sale != 2 || rep.Commodity.Name != "商品") {
				t.Errorf("commodity = %+v", rep.Commodity)
			}
			if c.want != 200 && (rep.Success || rep.Error.Code != c.want) {
				t.Errorf("reply = %+v", rep)
			}
		})
	}
}

func TestCreatePassesFields(t *testing.T) {
	t.Parallel()
	f := &fakeStock{rsp: &pb.Response{Success: true, Commodity: &pb.Commodity{Id: 1, Name: "x", Count: 3}}}
	code, rep := do(t, f, "POST", "/stock/create", adminKey, []byte(`{"name":"x","count":3,"sale":0,"startTime":10,"endTime":20}`))
	if code != 200 || !rep.Success || rep.Commodity.ID != 1 {
		t.Fatalf("got %d %+v", code, rep)
	}
	if f.last.Name != "x" || f.last.Count != 3 || f.last.StartTime != 10 || f.last.EndTime != 20 {
		t.Errorf("sent %v", f.last)
	}
	code, rep = do(t, f, "GET", "/stock/list", "", nil)
	if code != 200 || len(rep.Commodities) != 1 {
		t.Errorf("list: %d %+v", code, rep)
	}
}

// A reader who prefers Chinese gets the Chinese words of a refusal from the read cache too,
// and an English reader of the same commodity does not.
func TestGetWordsPerLanguage(t *testing.T) {
	t.Parallel()
	f := &fakeStock{rsp: &pb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)}}
	h := New(f, adminKey, 4096).Routes()
	get := func(lang string) map[string]any {
		r := httptest.NewRequest("GET", "/stock/get?id=9", nil)
		r.Header.Set("Accept-Language", lang)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return httpapitest.CheckReply(t, w)["error"].(map[string]any)
	}
	for range 2 { // the second time from the cache
		if e := get("zh-CN"); e["message"] != "商品不存在" {
			t.Errorf("Chinese reader: %v; want the Chinese words", e)
		}
		if e := get("en"); e["message"] != nil || e["detail"] != "commodity not found" {
			t.Errorf("English reader: %v; want only the English detail", e)
		}
	}
}

// A refused list shows no list.
func TestListRefused(t *testing.T) {
	t.Parallel()
	code, rep := do(t, &fakeStock{}, "GET", "/stock/list?limit=5000", "", nil)
	if code != 400 || rep.Commodities != nil {
		t.Errorf("list?limit=5000: %d %+v; want 400 and no commodities", code, rep)
	}
}
