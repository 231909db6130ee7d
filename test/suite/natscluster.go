package suite

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/dbtest"
)

// NATSNodes is the size of a cluster suite's NATS cluster.
const NATSNodes = 3

// NewNATSCluster starts the six services on a cluster of three NATS servers (cluster
// routes between them, JetStream on each) with the event stream kept on all three
// (SECBUY_NATS_REPLICAS=3); the services are given the three URLs. KillNATSNode kills one.
func NewNATSCluster(t testing.TB, extraEnv []string) *Suite {
	t.Helper()
	s := newSuite(t, Services, 1)
	var clients, routes []string
	for range NATSNodes {
		clients = append(clients, freeAddr(t))
		routes = append(routes, freeAddr(t))
	}
	for i := range NATSNodes {
		s.startNATSNode(i, clients[i], routes)
	}
	t.Cleanup(func() {
		for i := range s.cluster {
			s.KillNATSNode(i)
		}
	})
	urls := make([]string, len(clients))
	for i, c := range clients {
		urls[i] = "nats://" + c
		waitTCP(t, c, 10*time.Second)
	}
	s.NATSURL = strings.Join(urls, ",")
	s.waitJetStream()
	s.DBURL = dbtest.NewURL(t)
	s.Env = s.env(extraEnv, append(s.webEnv(), "SECBUY_NATS_REPLICAS=3")...)
	t.Cleanup(s.stopAll)
	for _, name := range Services {
		s.Start(name)
	}
	for w := range s.web {
		s.WaitHTTP(w)
	}
	return s
}

func (s *Suite) startNATSNode(i int, client string, routes []string) {
	s.t.Helper()
	host, port, _ := net.SplitHostPort(client)
	var others []string
	for j, r := range routes {
		if j != i {
			others = append(others, "nats://"+r)
		}
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	name := fmt.Sprintf("nats-%d", i+1)
	cmd := exec.Command(bin, "-a", host, "-p", port, "-js", "-sd", filepath.Join(s.dir, name),
		"-n", name, "--cluster_name", "secbuy", "-cluster", "nats://"+routes[i], "-routes", strings.Join(others, ","))
	cmd.Stdout, cmd.Stderr = s.logFile(name), s.logFile(name)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.cluster = append(s.cluster, cmd)
}

// KillNATSNode kills (SIGKILL) NATS node i of a cluster suite.
func (s *Suite) KillNATSNode(i int) {
	if c := s.cluster[i]; c != nil {
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
		s.cluster[i] = nil
	}
}

// waitJetStream waits until the cluster's JetStream answers (it has elected its leader).
func (s *Suite) waitJetStream() {
	s.t.Helper()
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		s.t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := Eventually(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	}); err != nil {
		s.t.Fatalf("the NATS cluster's JetStream did not answer within 30 s: %v", err)
	}
}
