package suite

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"secbuy/basic/connect"
	"secbuy/basic/dbtest"
)

// Locked are the credentials a locked suite's servers require (NewLocked): NATS a user
// and password, Redis a password (requirepass), and, if DBURL is set, that database
// (a private Postgres that requires a password: see Postgres.RequirePassword).
type Locked struct {
	NATSUser, NATSPassword string
	RedisPassword          string
	DBURL                  string
}

// NewLocked starts the six services against servers that require credentials: a private
// NATS server with a user and password (its config file), a private redis-server with
// requirepass on a free port, and the database of l.DBURL (a fresh one on the machine's
// Postgres if empty). The services are given them in SECBUY_NATS_USER, _PASSWORD,
// SECBUY_REDIS_ADDR and _PASSWORD; NATS() says how a test's own clients connect.
func NewLocked(t testing.TB, l Locked, extraEnv []string) *Suite {
	t.Helper()
	s := newSuite(t, Services, 1)
	s.natsDir = filepath.Join(s.dir, "nats")
	addr := freeAddr(t)
	s.NATSURL = "nats://" + addr
	host, port, _ := net.SplitHostPort(addr)
	s.natsConf = filepath.Join(s.dir, "nats.conf")
	conf := fmt.Sprintf("listen: %q\njetstream { store_dir: %q }\nauthorization { user: %q, password: %q }\n",
		net.JoinHostPort(host, port), s.natsDir, l.NATSUser, l.NATSPassword)
	if err := os.WriteFile(s.natsConf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.natsAuth = connect.NATS{URL: s.NATSURL, User: l.NATSUser, Password: l.NATSPassword}
	s.StartNATS()
	redisAddr := s.startRedis(l.RedisPassword)
	s.DBURL = l.DBURL
	if s.DBURL == "" {
		s.DBURL = dbtest.NewURL(t)
	}
	s.Env = s.env(extraEnv, append(s.webEnv(),
		"SECBUY_NATS_USER="+l.NATSUser, "SECBUY_NATS_PASSWORD="+l.NATSPassword,
		"SECBUY_REDIS_ADDR="+redisAddr, "SECBUY_REDIS_PASSWORD="+l.RedisPassword)...)
	for _, name := range Services {
		if _, web := s.web[name]; !web {
			s.inst[name] = freeAddr(t)
		}
	}
	t.Cleanup(s.stopAll)
	for _, name := range Services {
		s.Start(name)
	}
	for _, name := range Services {
		if _, ok := s.web[name]; ok {
			s.WaitHTTP(name)
		}
	}
	return s
}

// NATS says how to reach the suite's NATS, with its credentials.
func (s *Suite) NATS() connect.NATS {
	if s.natsAuth.URL != "" {
		return s.natsAuth
	}
	return connect.NATS{URL: s.NATSURL}
}

// startRedis starts a private redis-server on a free loopback port, requiring password,
// keeping nothing on disk; it is killed when the test ends. It returns its address.
func (s *Suite) startRedis(password string) string {
	s.t.Helper()
	addr := freeAddr(s.t)
	host, port, _ := net.SplitHostPort(addr)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatalf("a private redis-server is needed (apt-get install redis-server): %v", err)
	}
	// The password on stdin, as a config file: not in the process's arguments.
	cmd := exec.Command(bin, "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("bind %s\nport %s\nrequirepass %q\nsave \"\"\nappendonly no\ndir %s\n",
		host, port, password, s.dir))
	cmd.Stdout, cmd.Stderr = s.logFile("redis"), s.logFile("redis")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	defer rdb.Close()
	if err := Eventually(10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err()
	}); err != nil {
		s.t.Fatalf("private redis-server on %s does not answer: %v", addr, err)
	}
	return addr
}

// RunOnce runs service name with the suite's environment and env on top, until it exits
// or limit passes (then it is killed), and returns what it printed and how it ended.
func (s *Suite) RunOnce(name string, limit time.Duration, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name))
	cmd.Env = append(append(os.Environ(), s.Env...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Logs returns every log of the suite so far (its services', NATS's, Redis's), by name.
func (s *Suite) Logs() map[string]string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
	out := map[string]string{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out[strings.TrimSuffix(filepath.Base(f), ".log")] = string(b)
	}
	return out
}

// RequirePassword gives the server's postgres user password and makes the server ask for
// it (scram-sha-256) on every connection; URL and DatabaseURL carry it from then on.
func (p *Postgres) RequirePassword(password string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.URL()+"/postgres?sslmode=disable")
	if err != nil {
		p.t.Fatal(err)
	}
	_, err = c.Exec(ctx, "ALTER USER postgres PASSWORD "+quoteLiteral(password))
	_ = c.Close(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	hba := "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(p.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		p.t.Fatal(err)
	}
	if out, err := p.run(time.Minute, "pg_ctl", "reload", "-D", p.data); err != nil {
		p.t.Fatalf("pg_ctl reload: %v\n%s", err, out)
	}
	// The reload is a signal: wait until a connection without the password is refused.
	open := p.URL() + "/postgres?sslmode=disable"
	p.mu.Lock()
	p.pass = password
	p.mu.Unlock()
	if err := Eventually(10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, open)
		if err == nil {
			_ = c.Close(ctx)
			return errors.New("the server still lets in the postgres user without a password")
		}
		return nil
	}); err != nil {
		p.t.Fatal(err)
	}
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
