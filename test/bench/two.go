package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"secbuy/basic/auth"
	"secbuy/test/load"
)

// two is the scale-out scenario, run last: it restarts the suite with two instances of
// every service and HAProxy in front of the web ones (scripts/suite.sh up, INSTANCES=2, as
// `make up INSTANCES=2`), and measures, each with the closed loop:
//
//	two-direct    sold-out buys sent straight to order-web-1 (no balancer)
//	two-lb-1      the same through HAProxy, with order-web-2 taken out of its rotation
//	two-lb-2      the same through HAProxy, both order-web instances in
//	two-sustained buys that all succeed, through HAProxy, two of everything (against the
//	              one-instance sustained row above)
//
// two-lb-1 over two-direct is the cost of the balancer's hop; two-lb-2 over two-lb-1 the
// gain of a second edge instance; two-sustained over sustained that of a second of
// everything. On a machine of two cores the instances share those cores: the gain measures
// the coordination, not more hardware.
func (b *bench) two(ctx context.Context, base int64) []row {
	fail := func(err error) []row { return []row{{name: "two", err: err}} }
	if err := b.restart(ctx, "INSTANCES=2"); err != nil { // two instances of everything
		return fail(err)
	}
	direct, err := instanceURL(b.cfg.OrderURL, 1)
	if err != nil {
		return fail(err)
	}
	id, err := b.soldOutCommodity(ctx, base)
	if err != nil {
		return fail(err)
	}
	var rows []row
	soldOut := func(name, orderURL, note string) {
		toks, tmpl, err := b.buyersAt(orderURL, id, base+2, b.soldOutUsers)
		if err != nil {
			rows = append(rows, row{name: name, err: err})
			return
		}
		m := b.closed(true).run(ctx, func(seq int64) request {
			r := tmpl
			i := int(seq % int64(len(toks)))
			r.bearer, r.user, r.key = toks[i], base+2+int64(i), name+"-"+strconv.FormatInt(seq, 36)
			return r
		})
		r := newRow(name, m)
		r.note, r.checked, r.violations = note, true, wrongAnswers(m.samples, "sold out", http.StatusConflict)
		rows = append(rows, r)
	}
	soldOut("two-direct", direct, "sold-out buys straight to order-web-1")
	if err := b.haproxy("disable server order-web/order-web-2"); err != nil {
		return append(rows, row{name: "two-lb-1", err: err})
	}
	soldOut("two-lb-1", b.cfg.OrderURL, "through HAProxy, order-web-2 out of rotation")
	if err := b.haproxy("enable server order-web/order-web-2"); err != nil {
		return append(rows, row{name: "two-lb-2", err: err})
	}
	soldOut("two-lb-2", b.cfg.OrderURL, "through HAProxy, both order-web instances")
	// Sustained buys through HAProxy, checked whole as the one-instance row is.
	r := b.sustainedOnce(ctx, "two-sustained", base+5_000_000, 0, b.sweep)
	r.note = "two of everything, through HAProxy; " + r.note
	return append(rows, r)
}

// soldOutCommodity creates a commodity of one unit and sells it.
func (b *bench) soldOutCommodity(ctx context.Context, base int64) (int64, error) {
	id, err := load.CreateCommodity(ctx, b.client, b.cfg, "bench-two-sold-out", 1)
	if err != nil {
		return 0, err
	}
	tok, err := auth.Mint(b.cfg.AuthSecret, base+1, 2*time.Hour)
	if err != nil {
		return 0, err
	}
	if first := load.Buy(ctx, b.client, b.cfg, tok, base+1, id, "bench-two-first"); first.Reason != "ok" && first.Reason != "pending" {
		return 0, errors.Join(fmt.Errorf("buying the only unit of commodity %d: %d %s", id, first.Status, first.Reason), first.Err)
	}
	return id, nil
}

// buyersAt is buyers with the buy sent to orderURL.
func (b *bench) buyersAt(orderURL string, id, first int64, n int) ([]string, request, error) {
	toks, err := mintRange(b.cfg.AuthSecret, first, n)
	if err != nil {
		return nil, request{}, err
	}
	tmpl, err := newRequest("POST", orderURL+"/order/sell", fmt.Appendf(nil, `{"id":%d}`, id))
	return toks, tmpl, err
}

// haproxy sends one command to the suite's HAProxy on its admin socket.
func (b *bench) haproxy(command string) error {
	c, err := net.DialTimeout("unix", filepath.Join(b.runDir, "haproxy.sock"), 2*time.Second)
	if err != nil {
		return fmt.Errorf("haproxy admin socket: %w", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return err
	}
	out, err := io.ReadAll(c)
	if s := strings.TrimSpace(string(out)); err == nil && s != "" {
		err = fmt.Errorf("haproxy %q: %s", command, s)
	}
	return err
}

// instanceURL is where web instance i listens when HAProxy holds the public URL: the
// public port + 10000 + 100*(i-1), as scripts/suite.sh places them.
func instanceURL(public string, i int) (string, error) {
	host, port, err := net.SplitHostPort(strings.TrimPrefix(public, "http://"))
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(p+10000+100*(i-1))), nil
}
