package suite

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"secbuy/basic/dbtest"
)

// NewScaled starts the whole suite with n (at least 2) instances of every service, each
// on its own port, and HAProxy (scripts/lb.sh, the same as `make up INSTANCES=n`) on the
// web services' public addresses in front of the web instances. Units are named NAME-i
// (order-srv-1 ... order-srv-n); URL(name) is the load balancer's address for a web
// service, InstanceURL(unit) an instance's own (its health endpoints, for a srv).
func NewScaled(t testing.TB, n int, extraEnv []string) *Suite {
	t.Helper()
	s := newSuite(t, Services, n)
	s.natsDir = filepath.Join(s.dir, "nats")
	s.NATSURL = "nats://" + freeAddr(t)
	s.StartNATS()
	s.DBURL = dbtest.NewURL(t)
	for _, u := range s.Units() {
		s.inst[u] = freeAddr(t)
	}
	s.Env = s.env(extraEnv, "SECBUY_CLIENT_IP_HEADER=X-Forwarded-For") // HAProxy's option forwardfor
	t.Cleanup(s.stopAll)
	for _, u := range s.Units() {
		s.Start(u)
	}
	s.StartLB()
	for _, u := range s.Units() {
		s.WaitReady(u, 30*time.Second)
	}
	for w := range s.web {
		s.WaitHTTP(w)
	}
	return s
}

// Units are the suite's processes of the services: the six names, or NAME-i for each of
// a scaled suite's instances.
func (s *Suite) Units() []string {
	if s.n <= 1 {
		return Services
	}
	var out []string
	for _, name := range Services {
		for i := 1; i <= s.n; i++ {
			out = append(out, fmt.Sprintf("%s-%d", name, i))
		}
	}
	return out
}

var unitName = regexp.MustCompile(`^(.*-(?:srv|web))(?:-([0-9]+))?$`)

// ServiceOf returns the service of unit (order-srv of order-srv-2) and whether unit names
// one.
func ServiceOf(unit string) (string, bool) {
	m := unitName.FindStringSubmatch(unit)
	if m == nil {
		return unit, false
	}
	return m[1], true
}

func webAddrVar(svc string) string {
	return "SECBUY_" + strings.ToUpper(strings.TrimSuffix(svc, "-web")) + "_WEB_ADDR"
}

// InstanceURL is the base URL of a unit's own: a web instance's address, or where a srv
// instance serves /health/ready and /metrics; in a suite that is not scaled, a web
// service's URL.
func (s *Suite) InstanceURL(unit string) string {
	if addr, ok := s.inst[unit]; ok {
		return "http://" + addr
	}
	return s.URL(unit)
}

// Ready reports whether unit answers 200 on /health/ready.
func (s *Suite) Ready(unit string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(s.InstanceURL(unit) + "/health/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady waits until unit is ready, and a web instance behind HAProxy until HAProxy
// sends to it again: as a rolling upgrade must, before it stops the next instance.
func (s *Suite) WaitReady(unit string, timeout time.Duration) {
	s.t.Helper()
	if err := Eventually(timeout, func() error {
		if !s.Ready(unit) {
			return fmt.Errorf("%s is not ready within %v", unit, timeout)
		}
		if svc, _ := ServiceOf(unit); s.lb != nil && strings.HasSuffix(svc, "-web") {
			st, err := s.lbStatus(svc, unit)
			if err != nil {
				return fmt.Errorf("HAProxy's status of %s: %w", unit, err)
			}
			if !strings.HasPrefix(st, "UP") {
				return fmt.Errorf("HAProxy has %s %s after %v", unit, st, timeout)
			}
		}
		return nil
	}); err != nil {
		s.t.Fatal(err)
	}
}

// lbStatus is HAProxy's status of server unit in backend svc ("UP", "DOWN", ...), from
// its admin socket.
func (s *Suite) lbStatus(svc, unit string) (string, error) {
	c, err := net.DialTimeout("unix", filepath.Join(s.dir, "lb", "haproxy.sock"), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return "", err
	}
	rows, err := csv.NewReader(c).ReadAll()
	if err != nil {
		return "", fmt.Errorf("show stat: %w", err)
	}
	if len(rows) == 0 {
		return "", errors.New("show stat: no answer")
	}
	status := slices.Index(rows[0], "status")
	for _, r := range rows[1:] {
		if len(r) > status && status >= 0 && r[0] == svc && r[1] == unit {
			return r[status], nil
		}
	}
	return "", fmt.Errorf("no server %s/%s", svc, unit)
}

// StartLB starts HAProxy in front of the web instances, as `make up INSTANCES=n` does.
func (s *Suite) StartLB() {
	s.t.Helper()
	args := []string{filepath.Join(Root(), "scripts", "lb.sh"), filepath.Join(s.dir, "lb")}
	for _, w := range []string{"stock-web", "order-web", "payment-web"} {
		var addrs []string
		for i := 1; i <= s.n; i++ {
			addrs = append(addrs, s.inst[fmt.Sprintf("%s-%d", w, i)])
		}
		args = append(args, w+"="+s.web[w]+"="+strings.Join(addrs, ","))
	}
	cmd := exec.Command("bash", args...)
	cmd.Stdout, cmd.Stderr = s.logFile("haproxy"), s.logFile("haproxy")
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start haproxy: %v", err)
	}
	s.lb = cmd
}

// StopLB stops HAProxy.
func (s *Suite) StopLB() {
	if s.lb != nil {
		_ = s.lb.Process.Signal(syscall.SIGTERM)
		_ = s.lb.Wait()
		s.lb = nil
	}
}

// Pid returns the process id of unit, or 0 if it is not running.
func (s *Suite) Pid(unit string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.procs[unit]; c != nil {
		return c.Process.Pid
	}
	return 0
}

// LogOf returns what unit has logged so far.
func (s *Suite) LogOf(unit string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, unit+".log"))
	return string(b)
}
