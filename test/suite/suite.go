// Package suite runs the real secbuy binaries as separate processes for whole-suite tests:
// each Suite has its own NATS server (registry and JetStream), its own Postgres database and
// its own ports, so tests never meet a suite that `make run` started, nor each other.
package suite

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/connect"
	"secbuy/basic/dbtest"
)

// Services are the six binaries, in start order.
var Services = []string{"stock-srv", "order-srv", "payment-srv", "stock-web", "order-web", "payment-web"}

// Secrets the suites run with (at least config.MinSecretBytes each).
const (
	AuthSecret = "suite-secret-suite-secret-suite-secret"
	AdminKey   = "suite-admin-suite-admin-suite-admin"
)

var (
	// The ports freeAddr gave out in this test process.
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}

	buildMu sync.Mutex
	binDir  string
	built   = map[string]bool{}
)

// Root returns the repository root (the directory of go.mod).
func Root() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// build compiles the named services, each once per test process, with fault injection
// compiled in (the build tag faultinject; see basic/svc/fault_inject.go).
func build(t testing.TB, services []string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir == "" {
		dir, err := os.MkdirTemp("", "secbuy-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
	}
	args := []string{"build", "-tags", "faultinject", "-o", binDir + "/"}
	for _, s := range services {
		switch {
		case built[s]:
		case s == "micro": // the go-micro CLI, the tool of go.mod (bin/micro of make run/up)
			args = append(args, "go-micro.dev/v6/cmd/micro")
		default:
			args = append(args, "./"+s)
		}
	}
	if len(args) == 5 {
		return binDir
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, s := range services {
		built[s] = true
	}
	return binDir
}

// Build compiles the named services (all six if none are named), once per test process,
// for a test that must know when they start.
func Build(t testing.TB, services ...string) {
	t.Helper()
	if len(services) == 0 {
		services = Services
	}
	build(t, services)
}

// Binary returns the path of service's binary, built as the suites run it, for a test
// that runs it by itself.
func Binary(t testing.TB, service string) string {
	t.Helper()
	return filepath.Join(build(t, []string{service}), service)
}

// Suite is one running copy of the system.
type Suite struct {
	t       testing.TB
	dir     string
	bin     string
	NATSURL string
	DBURL   string
	Env     []string
	web     map[string]string // service → host:port
	mu      sync.Mutex
	procs   map[string]*exec.Cmd
	nats    *exec.Cmd
	natsDir string
	// A locked suite's (NewLocked): the NATS server's config file, and its credentials.
	natsConf string
	natsAuth connect.NATS
	// Scaled suites (NewScaled): units are NAME-i; inst is where each listens (a web) or
	// serves its health (a srv); lb is HAProxy.
	n    int
	inst map[string]string
	lb   *exec.Cmd
	// A cluster suite's NATS servers (NewNATSCluster).
	cluster []*exec.Cmd
}

// New starts a private NATS server, a fresh database and the given services (all six if
// none are named), and waits until every web service answers. extraEnv (KEY=VALUE) is
// added to each service's environment.
func New(t testing.TB, extraEnv []string, services ...string) *Suite {
	t.Helper()
	return NewOn(t, "", extraEnv, services...)
}

// NewOn is New with the services' database at dbURL; "" means a fresh database on the
// machine's Postgres (dbtest.NewURL), as New does.
func NewOn(t testing.TB, dbURL string, extraEnv []string, services ...string) *Suite {
	t.Helper()
	if len(services) == 0 {
		services = Services
	}
	s := newSuite(t, services, 1)
	s.natsDir = filepath.Join(s.dir, "nats")
	s.NATSURL = "nats://" + freeAddr(t)
	s.StartNATS()
	s.DBURL = dbURL
	if s.DBURL == "" {
		s.DBURL = dbtest.NewURL(t)
	}
	s.Env = s.env(extraEnv, s.webEnv()...)
	for _, name := range services {
		if _, web := s.web[name]; !web {
			s.inst[name] = freeAddr(t) // its /health/ready and /metrics: InstanceURL(name)
		}
	}
	t.Cleanup(s.stopAll)
	for _, name := range services {
		s.Start(name)
	}
	for _, name := range services {
		if _, ok := s.web[name]; ok {
			s.WaitHTTP(name)
		}
	}
	return s
}

// newSuite is a Suite of n instances of each of services (built), with its web
// services' public addresses chosen; its NATS, database and Env are the caller's.
func newSuite(t testing.TB, services []string, n int) *Suite {
	s := &Suite{t: t, dir: t.TempDir(), bin: build(t, services), web: map[string]string{}, procs: map[string]*exec.Cmd{},
		n: n, inst: map[string]string{}}
	for _, w := range []string{"stock-web", "order-web", "payment-web"} {
		s.web[w] = freeAddr(t)
	}
	return s
}

// env is what every unit runs with: development mode (the buyer page's sign-in may be
// turned on), the suite's database, NATS and secrets, then own, then the test's extra
// (which may override any of them).
func (s *Suite) env(extra []string, own ...string) []string {
	base := []string{
		"SECBUY_DEV=1",
		"SECBUY_DATABASE_URL=" + s.DBURL,
		"SECBUY_NATS_URL=" + s.NATSURL,
		"SECBUY_AUTH_SECRET=" + AuthSecret,
		"SECBUY_ADMIN_KEY=" + AdminKey,
		"SECBUY_LOG_LEVEL=info",
	}
	return append(append(base, own...), extra...)
}

// webEnv points each web service at its public address (a suite of one instance each),
// and the buyer page at payment-web, which lets the page's origin call it.
func (s *Suite) webEnv() []string {
	return []string{
		"SECBUY_STOCK_WEB_ADDR=" + s.web["stock-web"],
		"SECBUY_ORDER_WEB_ADDR=" + s.web["order-web"],
		"SECBUY_PAYMENT_WEB_ADDR=" + s.web["payment-web"],
		"SECBUY_PAGE_PAYMENT_URL=" + s.URL("payment-web"),
		"SECBUY_CORS_ORIGINS=" + s.URL("order-web"),
	}
}

// StartNATS starts (or restarts, keeping its JetStream data) the suite's NATS server.
func (s *Suite) StartNATS() {
	s.t.Helper()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(s.NATSURL, "nats://"))
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	cmd := exec.Command(bin, "-a", host, "-p", port, "-js", "-sd", s.natsDir)
	if s.natsConf != "" {
		cmd = exec.Command(bin, "-c", s.natsConf)
	}
	cmd.Stdout, cmd.Stderr = s.logFile("nats"), s.logFile("nats")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server (install it: apt-get install nats-server): %v", err)
	}
	s.nats = cmd
	waitTCP(s.t, host+":"+port, 10*time.Second)
}

// StopNATS stops the NATS server gracefully.
func (s *Suite) StopNATS() {
	if s.nats != nil {
		_ = s.nats.Process.Signal(syscall.SIGTERM)
		_ = s.nats.Wait()
		s.nats = nil
	}
}

func (s *Suite) logFile(name string) *os.File {
	f, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	return f
}

// Start starts unit name (again, if it was stopped): a service, or in a scaled suite an
// instance of one (order-srv-2).
func (s *Suite) Start(name string) {
	s.t.Helper()
	svc, _ := ServiceOf(name)
	cmd := exec.Command(filepath.Join(s.bin, svc))
	cmd.Env = append(os.Environ(), s.Env...)
	if addr, ok := s.inst[name]; ok {
		if strings.HasSuffix(svc, "-web") {
			cmd.Env = append(cmd.Env, webAddrVar(svc)+"="+addr)
		} else {
			cmd.Env = append(cmd.Env, "SECBUY_HEALTH_ADDR="+addr)
		}
	}
	log := s.logFile(name)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	s.mu.Lock()
	s.procs[name] = cmd
	s.mu.Unlock()
}

// Stop sends SIGTERM to service name and waits for it to exit.
func (s *Suite) Stop(name string) { s.signal(name, syscall.SIGTERM) }

// Kill sends SIGKILL to service name.
func (s *Suite) Kill(name string) { s.signal(name, syscall.SIGKILL) }

func (s *Suite) signal(name string, sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		s.t.Errorf("%s did not exit within 20 s of %v", name, sig)
	}
}

func (s *Suite) stopAll() {
	s.mu.Lock()
	names := make([]string, 0, len(s.procs))
	for n := range s.procs {
		names = append(names, n)
	}
	s.mu.Unlock()
	for _, n := range names {
		s.Stop(n)
	}
	s.StopLB()
	s.StopNATS()
	if s.t.Failed() {
		for _, n := range append([]string{"nats", "haproxy"}, s.Units()...) {
			b, _ := os.ReadFile(filepath.Join(s.dir, n+".log"))
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			if len(b) > 0 {
				s.t.Logf("--- %s.log (tail) ---\n%s", n, b)
			}
		}
	}
}

// URL returns the base URL of web service name, e.g. http://127.0.0.1:41234.
func (s *Suite) URL(name string) string { return "http://" + s.web[name] }

// WaitHTTP waits until web service name answers HTTP.
func (s *Suite) WaitHTTP(name string) {
	s.t.Helper()
	waitTCP(s.t, s.web[name], 30*time.Second)
}

// Token returns a valid bearer token for user.
func (s *Suite) Token(user int64) string {
	tok, err := auth.Mint(AuthSecret, user, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// Micro runs the go-micro CLI as the README does (bin/micro, built as make run/up builds
// it), against the suite's registry, and returns its output.
func (s *Suite) Micro(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(build(s.t, []string{"micro"}), "micro"), args...)
	cmd.Dir = Root()
	addr := s.NATSURL
	if n := s.natsAuth; n.User != "" {
		// The CLI takes no NATS options of its own: the credentials go in the URL.
		addr = "nats://" + url.UserPassword(n.User, n.Password).String() + "@" + strings.TrimPrefix(n.URL, "nats://")
	}
	cmd.Env = append(os.Environ(), "MICRO_REGISTRY=nats", "MICRO_REGISTRY_ADDRESS="+addr)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Eventually retries f every 100 ms until it returns nil or timeout passes.
func Eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address that is free now. Its port is below the kernel's
// ephemeral range (32768 and up), so a service that binds port 0 (every srv's gRPC server)
// cannot be given it before the unit it is meant for starts.
func freeAddr(t testing.TB) string {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if portsGiven[port] {
			continue // given to another unit, which may not have bound it yet
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err == nil {
			l.Close()
			portsGiven[port] = true
			return addr
		}
	}
	t.Fatal("no free port in 20000-31999")
	return ""
}

func waitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing answered on %s within %v", addr, timeout)
}
