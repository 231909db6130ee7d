// Package load is secbuy's load generator and invariant checker, shared by the load tester
// command (test/loadtest), the whole-suite tests and the benchmark. It drives the public
// HTTP API like a crowd of buyers, then checks every invariant of shared/DESIGN.md through
// the services' own APIs.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/ticket"
)

// Config says what to run against and how hard.
type Config struct {
	StockURL, OrderURL, PaymentURL string
	AdminKey, AuthSecret           string
	// Buyers is the number of distinct users; Units the stock of the commodity that is
	// created unless Commodity names an existing one.
	Buyers    int
	Units     int64
	Commodity int64
	// Twice is how many of the buyers press "buy" twice at the same moment.
	Twice int
	// Conns caps concurrent requests (a closed loop of Conns workers); 0 releases every
	// request at the same moment, each on its own connection.
	Conns int
	// UserBase is added to buyer numbers to make user ids, so runs don't share users.
	UserBase int64
	// NATSURL is the registry the Audit RPCs are looked up in.
	NATSURL string
	// Settle is how long to wait for pending orders and payments before checking.
	Settle time.Duration
	// Buckets, if set, is how many rows the created commodity's count is split over.
	Buckets int
	// Ticket: the created commodity requires a ticket, and every press gets one first
	// (GET /order/ticket, and its proof of work), as the buyer's page does.
	Ticket bool
	// StartTime, if set, is when the created commodity's sale opens (unix seconds).
	StartTime int64
	// Progress, if a terminal, is where Burst draws its live progress line (ShowProgress)
	// while the buyers press; nil or not a terminal: none.
	Progress *os.File
	// Mint, if set, makes a buyer's token (an identity provider's); by default it is
	// HS256 with AuthSecret.
	Mint func(user int64) (string, error)
}

// Token returns a token of user: cfg.Mint's, or HS256 with AuthSecret valid for ttl.
func (cfg Config) Token(user int64, ttl time.Duration) (string, error) {
	if cfg.Mint != nil {
		return cfg.Mint(user)
	}
	return auth.Mint(cfg.AuthSecret, user, ttl)
}

// Reply is one buy request's outcome.
type Reply struct {
	User int64
	// Token is the bearer token of the press (Buy sets it); a check that resends uses it,
	// or, if it is empty, mints one for User.
	Token   string
	Status  int
	Reason  string // "ok", "pending", or the error detail ("sold out", ...)
	OrderID int64
	Key     string    // the Idempotency-Key sent
	Sent    time.Time // when the request was sent (zero if not known)
	Latency time.Duration
	Err     error
}

// Result is a whole burst.
type Result struct {
	Commodity int64
	Replies   []Reply
	Start     time.Time // when the buyers were released (zero if not known)
	Elapsed   time.Duration
}

// Order is the JSON form of an order.
type Order struct {
	ID     int64  `json:"id"`
	Sid    int64  `json:"sid"`
	UserID int64  `json:"userId"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

type apiError struct {
	Code   int    `json:"code"`
	Detail string `json:"detail"`
}

type reply struct {
	Success   bool      `json:"success"`
	Error     *apiError `json:"error"`
	Order     *Order    `json:"order"`
	Commodity *struct {
		ID    int64 `json:"id"`
		Count int64 `json:"count"`
		Sale  int64 `json:"sale"`
	} `json:"commodity"`
	Payment *struct {
		State int `json:"state"`
	} `json:"payment"`
	Ticket *Ticket `json:"ticket"`
}

// Ticket is the ticket of a GET /order/ticket reply.
type Ticket struct {
	Value string `json:"value"`
	Pow   int    `json:"pow"`
}

// SellBody is the body of a buy of commodity with ticket t, its proof of work done (what
// the buyer's page sends).
func SellBody(commodity int64, t Ticket) []byte {
	tk := ticket.Ticket{Value: t.Value, Bits: t.Pow}
	b, _ := json.Marshal(map[string]any{"id": commodity, "ticket": tk.Value, "nonce": ticket.Solve(tk)}) // strings and a number: never fails
	return b
}

// Client is an HTTP client sized for a crowd on loopback.
func Client(conns int) *http.Client {
	if conns <= 0 {
		conns = 10000
	}
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

func call(ctx context.Context, c *http.Client, method, url, token string, header map[string]string, body []byte) (int, reply, error) {
	var r reply
	code, err := send(ctx, c, method, url, token, header, body, &r)
	return code, r, err
}

// Do sends an HTTP request with an optional bearer token and JSON body (a []byte as it is,
// anything else marshalled), within 30 s, and decodes the JSON reply into out (if not
// nil). It returns the status code.
func Do(c *http.Client, method, url, token string, body any, out any) (int, error) {
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return 0, err
		}
		b = j
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return send(ctx, c, method, url, token, nil, b, out)
}

// send makes one request (body nil: none) and decodes the JSON reply into out, if not nil.
func send(ctx context.Context, c *http.Client, method, url, token string, header map[string]string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rsp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		return rsp.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return rsp.StatusCode, fmt.Errorf("%s %s: reply is not JSON (%d): %.200q", method, url, rsp.StatusCode, b)
		}
	}
	return rsp.StatusCode, nil
}

// CreateCommodity creates a commodity of units through stock-web and returns its id.
func CreateCommodity(ctx context.Context, c *http.Client, cfg Config, name string, units int64) (int64, error) {
	fields := map[string]any{"name": name, "count": units}
	if cfg.Buckets > 0 {
		fields["buckets"] = cfg.Buckets
	}
	if cfg.Ticket {
		fields["ticketRequired"] = true
	}
	if cfg.StartTime != 0 {
		fields["startTime"] = cfg.StartTime
	}
	body, _ := json.Marshal(fields)
	code, r, err := call(ctx, c, "POST", cfg.StockURL+"/stock/create", "", map[string]string{"X-Admin-Key": cfg.AdminKey}, body)
	if err != nil {
		return 0, err
	}
	if code != 200 || r.Commodity == nil {
		return 0, fmt.Errorf("create commodity: status %d %+v", code, r.Error)
	}
	return r.Commodity.ID, nil
}

// Buy sends one POST /order/sell for user; key is the Idempotency-Key ("" for none).
// With cfg.Ticket it gets a ticket first, and a refusal of the ticket is the reply.
func Buy(ctx context.Context, c *http.Client, cfg Config, token string, user, commodity int64, key string) Reply {
	var h map[string]string
	if key != "" {
		h = map[string]string{"Idempotency-Key": key}
	}
	start := time.Now()
	code, r, err := 0, reply{}, error(nil)
	body := fmt.Appendf(nil, `{"id":%d}`, commodity)
	if cfg.Ticket {
		code, r, err = call(ctx, c, "GET", fmt.Sprintf("%s/order/ticket?id=%d", cfg.OrderURL, commodity), token, nil, nil)
		switch {
		case err == nil && code == 200 && r.Ticket != nil:
			body = SellBody(commodity, *r.Ticket)
		case err == nil && code == 200:
			err = errors.New("GET /order/ticket: 200 without a ticket")
		}
	}
	if err == nil && (!cfg.Ticket || code == 200) {
		code, r, err = call(ctx, c, "POST", cfg.OrderURL+"/order/sell", token, h, body)
	}
	rep := Reply{User: user, Token: token, Status: code, Key: key, Sent: start, Latency: time.Since(start), Err: err}
	switch {
	case err != nil:
		rep.Reason = "error"
	case code == 200:
		rep.Reason = "ok"
	case code == 202:
		rep.Reason = "pending"
	case r.Error != nil:
		rep.Reason = r.Error.Detail
	default:
		rep.Reason = fmt.Sprintf("status %d", code)
	}
	if r.Order != nil {
		rep.OrderID = r.Order.ID
	}
	return rep
}

// Tokens mints one token per buyer.
func Tokens(cfg Config) ([]string, error) {
	toks := make([]string, cfg.Buyers)
	for i := range toks {
		t, err := cfg.Token(cfg.UserBase+int64(i)+1, 2*time.Hour)
		if err != nil {
			return nil, err
		}
		toks[i] = t
	}
	return toks, nil
}

// Burst creates the commodity (unless cfg.Commodity is set), releases every buyer at
// once and returns what each was told.
func Burst(ctx context.Context, c *http.Client, cfg Config) (Result, error) {
	res := Result{Commodity: cfg.Commodity}
	if res.Commodity == 0 {
		id, err := CreateCommodity(ctx, c, cfg, "flash-sale", cfg.Units)
		if err != nil {
			return res, err
		}
		res.Commodity = id
	}
	toks, err := Tokens(cfg)
	if err != nil {
		return res, err
	}
	// Jobs: every buyer once, the first Twice buyers a second time. Each press has its own
	// Idempotency-Key, which a buyer resends to learn the outcome of a press that failed.
	type job struct {
		buyer int
		key   string
	}
	jobs := make([]job, 0, cfg.Buyers+cfg.Twice)
	for i := 0; i < cfg.Buyers; i++ {
		jobs = append(jobs, job{i, fmt.Sprintf("press-%d-1", i)})
	}
	for i := 0; i < cfg.Twice && i < cfg.Buyers; i++ {
		jobs = append(jobs, job{i, fmt.Sprintf("press-%d-2", i)})
	}
	res.Replies = make([]Reply, len(jobs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	var tally *Tally // set before the release, which every press waits for
	run := func(j int) {
		b := jobs[j].buyer
		tally.Sent()
		rep := Buy(ctx, c, cfg, toks[b], cfg.UserBase+int64(b)+1, res.Commodity, jobs[j].key)
		tally.Answered(rep.Outcome(), rep.Latency)
		res.Replies[j] = rep
	}
	if cfg.Conns <= 0 {
		for j := range jobs {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; run(j) }()
		}
	} else {
		next := make(chan int, len(jobs))
		for j := range jobs {
			next <- j
		}
		close(next)
		for w := 0; w < cfg.Conns; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := range next {
					run(j)
				}
			}()
		}
	}
	tally, stopProgress := ShowProgress(cfg.Progress, "", int64(len(jobs)), 0)
	res.Start = time.Now()
	close(start)
	wg.Wait()
	res.Elapsed = time.Since(res.Start)
	stopProgress()
	return res, nil
}

// Counts returns how many replies had each reason.
func (r Result) Counts() map[string]int {
	m := map[string]int{}
	for _, rep := range r.Replies {
		m[rep.Reason]++
	}
	return m
}

// Percentile returns the p-th percentile latency (p in 0..100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Replies) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(r.Replies))
	for i, rep := range r.Replies {
		ls[i] = rep.Latency
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	i := int(float64(len(ls)-1) * p / 100)
	return ls[i]
}

// Summary is a one-paragraph report of the burst.
func (r Result) Summary() string {
	var b strings.Builder
	counts := r.Counts()
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(&b, "commodity %d: %d requests in %v (%.0f req/s)\n", r.Commodity, len(r.Replies),
		r.Elapsed.Round(time.Millisecond), float64(len(r.Replies))/r.Elapsed.Seconds())
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-20s %d\n", k, counts[k])
	}
	fmt.Fprintf(&b, "  latency p50 %v  p99 %v  max %v\n", r.Percentile(50).Round(time.Microsecond),
		r.Percentile(99).Round(time.Microsecond), r.Percentile(100).Round(time.Microsecond))
	return b.String()
}
