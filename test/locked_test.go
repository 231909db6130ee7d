package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/test/load"
	"secbuy/test/suite"
)

// TestLockedServers: the suite runs against servers that each require credentials (NATS a
// user and password, Redis requirepass, Postgres a password), and a sale of 20 units to
// 200 buyers at once keeps every invariant. A service given a wrong password for any of
// them exits at once, naming the server that refused it and showing no password. And no
// secret passed to the services (the auth secret, the admin key, the three passwords, the
// wrong ones) appears in anything a service logged.
func TestLockedServers(t *testing.T) {
	stamp := time.Now().UnixNano()
	natsPass := fmt.Sprintf("nats-pw-%x", stamp)
	redisPass := fmt.Sprintf("redis-pw-%x", stamp)
	pgPass := fmt.Sprintf("pg-pw-%x", stamp)
	suite.Build(t)
	begin := time.Now()
	pg := suite.StartPostgres(t)
	pg.RequirePassword(pgPass)
	t.Logf("%v: private postgres", time.Since(begin))
	s := suite.NewLocked(t, suite.Locked{NATSUser: "secbuy", NATSPassword: natsPass, RedisPassword: redisPass,
		DBURL: pg.DatabaseURL("locked")}, []string{"SECBUY_LOG_LEVEL=debug", "SECBUY_STOP_DELAY=0s"})
	cfg := load.Config{
		StockURL: s.URL("stock-web"), OrderURL: s.URL("order-web"), PaymentURL: s.URL("payment-web"),
		AdminKey: suite.AdminKey, AuthSecret: suite.AuthSecret, NATSURL: s.NATSURL,
		Buyers: 200, Units: 20, UserBase: userBase.Add(1_000_000), Settle: 20 * time.Second,
	}
	t.Logf("%v: suite started", time.Since(begin))
	waitReady(t, s, cfg)
	t.Logf("%v: suite ready", time.Since(begin))

	c := load.Client(0)
	res, err := load.Burst(context.Background(), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	au, violations, err := load.Check(context.Background(), c, cfg, load.NewAuditorOn(s.NATS()), res)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
	if n := res.Counts(); n["ok"] != 20 || n["sold out"] != 180 {
		t.Errorf("told: %v; want exactly 20 ok and 180 sold out", n)
	}
	if au.Sale != 20 || au.Live != 20 || au.Payments != 20 {
		t.Errorf("audit %v; want 20 sold, 20 orders, 20 payments", au)
	}
	if _, err := load.NewAuditor(s.NATSURL).Audit(context.Background(), res.Commodity); err == nil {
		t.Error("an auditor without the NATS credentials read the audit")
	}

	t.Logf("%v: sale checked", time.Since(begin))
	// The micro CLI, with the credentials in its registry address (it has no NATS options).
	out, err := s.Micro("call", "go.micro.secbuy.srv.stock", "StockService.Audit", fmt.Sprintf(`{"id":%d}`, res.Commodity))
	if err != nil || !strings.Contains(out, `"sale":"20"`) {
		t.Errorf("micro call StockService.Audit through the locked NATS: %v\n%s", err, out)
	}
	wrong := map[string]string{}
	for _, k := range []string{"nats", "redis", "postgres"} {
		wrong[k] = fmt.Sprintf("wrong-%s-%x", k, stamp+1) // not containing the right one
	}
	printed := map[string]string{}
	for _, c := range []struct {
		name, service string
		env           []string
		want          []string // in what it printed
		secret        string
	}{
		{"nats password, registry", "stock-web", []string{"SECBUY_NATS_PASSWORD=" + wrong["nats"]},
			[]string{"connect to nats at " + s.NATSURL, "refused", "nats: Authorization Violation"}, wrong["nats"]},
		{"nats password, events", "payment-srv", []string{"SECBUY_NATS_PASSWORD=" + wrong["nats"]},
			[]string{"connect to nats at " + s.NATSURL, "refused", "nats: Authorization Violation"}, wrong["nats"]},
		{"no nats password", "stock-srv", []string{"SECBUY_NATS_USER=", "SECBUY_NATS_PASSWORD="},
			[]string{"connect to nats at", "refused", "nats: Authorization Violation"}, natsPass},
		{"redis password", "order-web", []string{"SECBUY_REDIS_PASSWORD=" + wrong["redis"]},
			[]string{"redis at ", "refused", "WRONGPASS"}, wrong["redis"]},
		{"postgres password", "order-srv", []string{"SECBUY_DATABASE_URL=" + strings.Replace(pg.DatabaseURL("locked"), pgPass, wrong["postgres"], 1)},
			[]string{"connect to postgres at", "password authentication failed"}, wrong["postgres"]},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			// Its own listen addresses: the suite's are taken.
			env := append([]string{"SECBUY_STOCK_WEB_ADDR=127.0.0.1:0", "SECBUY_ORDER_WEB_ADDR=127.0.0.1:0"}, c.env...)
			out, err := s.RunOnce(c.service, 15*time.Second, env...)
			printed[c.name] = out
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("%s ended with %v after %v; want exit status 1\n%s", c.service, err, time.Since(start), out)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s took %v to exit; want it at once", c.service, d)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("%s printed no %q:\n%s", c.service, w, out)
				}
			}
			if strings.Contains(out, c.secret) {
				t.Errorf("%s printed the password:\n%s", c.service, out)
			}
		})
	}

	s.Stop("order-web") // its shutdown's lines too
	logs := s.Logs()
	for name, out := range printed {
		logs["the failed start: "+name] = out
	}
	secrets := map[string]string{"auth secret": suite.AuthSecret, "admin key": suite.AdminKey,
		"NATS password": natsPass, "Redis password": redisPass, "Postgres password": pgPass}
	for k, v := range wrong {
		secrets["wrong "+k+" password"] = v
	}
	checked := 0
	for name, log := range logs {
		if name == "nats" || name == "redis" {
			continue // the servers' own logs, not secbuy's
		}
		checked++
		for what, secret := range secrets {
			if strings.Contains(log, secret) {
				i := strings.Index(log, secret)
				t.Errorf("%s's log holds the %s: ...%s...", name, what, log[max(0, i-200):min(len(log), i+len(secret)+50)])
			}
		}
	}
	if checked < len(suite.Services)+len(printed) {
		t.Errorf("%d logs checked; want the %d services' and the %d failed starts'", checked, len(suite.Services), len(printed))
	}
	if os.Getenv("SECBUY_LOCKED_SHOW") != "" {
		t.Log(logs["stock-srv"])
	}
}

// TestPostgresPasswordOutsideURL: a database URL without a password reaches a Postgres that
// requires one when the standard PGPASSWORD holds it (so the password need not sit in
// SECBUY_DATABASE_URL); without it, or with a wrong one in the URL, Open fails with an
// error that shows no password.
func TestPostgresPasswordOutsideURL(t *testing.T) {
	pass := fmt.Sprintf("pg-env-pw-%x", time.Now().UnixNano())
	pg := suite.StartPostgres(t)
	pg.RequirePassword(pass)
	bare := strings.Replace(pg.DatabaseURL("outside"), ":"+pass+"@", "@", 1)
	if bare == pg.DatabaseURL("outside") {
		t.Fatalf("no password to take out of %s", bare)
	}
	ctx := context.Background()
	t.Setenv("PGPASSWORD", "")
	if _, err := db.Open(ctx, bare, 1, 5*time.Second); err == nil {
		t.Fatal("opened a password-protected database without a password")
	}
	wrongURL := strings.Replace(pg.DatabaseURL("outside"), pass, "wrong-"+pass, 1)
	if _, err := db.Open(ctx, wrongURL, 1, 5*time.Second); err == nil || strings.Contains(err.Error(), pass) ||
		!strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("wrong password in the URL: %v; want a refusal that shows no password", err)
	}
	t.Setenv("PGPASSWORD", pass)
	d, err := db.Open(ctx, bare, 1, 5*time.Second)
	if err != nil {
		t.Fatalf("with PGPASSWORD: %v", err)
	}
	defer d.Close()
	if err := d.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
