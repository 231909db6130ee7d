package connect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go-micro.dev/v6/registry"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://u:s3cret@h:4222,tls://tok3n@h2:4222", "nats://u:xxxxx@h:4222,tls://xxxxx@h2:4222"},
		{"postgres://p:s3cret@h/db?sslmode=require", "postgres://p:xxxxx@h/db?sslmode=require"},
		{"postgres://h/db?password=s3cret", "postgres://h/db?password=xxxxx"},
		{"u:s3cret@h:bad port", "xxxxx@h:bad port"},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestNATSOptionsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		n    NATS
		want string
	}{
		{"password without user", NATS{Password: "s3cret"}, "SECBUY_NATS_PASSWORD is set without SECBUY_NATS_USER"},
		{"two ways", NATS{User: "u", Password: "s3cret", Token: "t0ken"}, "not several"},
		{"missing nkey", NATS{NKeyFile: filepath.Join(dir, "none.nk")}, "SECBUY_NATS_NKEY_FILE"},
		{"missing creds", NATS{CredsFile: filepath.Join(dir, "none.creds")}, "SECBUY_NATS_CREDS_FILE"},
		{"missing CA", NATS{CAFile: filepath.Join(dir, "none.pem")}, "SECBUY_NATS_CA_FILE"},
		{"cert without key", NATS{CertFile: filepath.Join(dir, "c.pem")}, "SECBUY_NATS_CERT_FILE and SECBUY_NATS_KEY_FILE go together"},
	} {
		_, err := c.n.Options()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error with %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

// TestNATSOverTLS: a NATS server that takes only TLS and a user with a password: the event
// connection and go-micro's registry (a tls:// URL, the test's CA) both reach it, a
// service registered through one registry is found through another, and a wrong password
// or an unknown CA is refused at once with an error that names no password.
func TestNATSOverTLS(t *testing.T) {
	t.Parallel()
	ca, cert, key := certs(t)
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "nats.conf")
	write(t, conf, fmt.Sprintf("listen: \"127.0.0.1:%d\"\ntls { cert_file: %q, key_file: %q }\nauthorization { user: secbuy, password: \"n-s3cret\" }\n", port, cert, key))
	start(t, "nats-server", "-c", conf)
	n := NATS{URL: fmt.Sprintf("tls://127.0.0.1:%d", port), User: "secbuy", Password: "n-s3cret", CAFile: ca}
	waitFor(t, func() error {
		nc, err := n.Connect("test")
		if err == nil {
			nc.Close()
		}
		return err
	})
	regs := make([]registry.Registry, 2)
	for i := range regs {
		r, err := n.Registry()
		if err != nil {
			t.Fatal(err)
		}
		regs[i] = r
	}
	svc := &registry.Service{Name: "tls.test", Nodes: []*registry.Node{{Id: "tls.test-1", Address: "127.0.0.1:1"}}}
	if err := regs[0].Register(svc); err != nil {
		t.Fatalf("register over TLS: %v", err)
	}
	waitFor(t, func() error {
		got, err := regs[1].GetService("tls.test")
		if err == nil && len(got) == 0 {
			err = fmt.Errorf("not found")
		}
		return err
	})

	wrong := n
	wrong.Password = "wrong-s3cret"
	otherCA, _, _ := certs(t)
	unknown := n
	unknown.CAFile = otherCA
	for name, bad := range map[string]NATS{"wrong password": wrong, "unknown CA": unknown} {
		if _, err := bad.Registry(); err == nil || !strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: registry: %v; want refused, without the password", name, err)
		}
		if _, err := bad.Connect("test"); err == nil || !strings.Contains(err.Error(), "refused") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: connect: %v; want refused, without the password", name, err)
		}
	}
	// No server answering is not a refusal: the registry waits for one.
	if _, err := (NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))}).Registry(); err != nil {
		t.Errorf("registry with NATS down: %v; want it built", err)
	}
}

// TestRedisOverTLS: a Redis that takes only TLS and an ACL user: the client of the
// settings reaches it; a wrong password is refused by CheckRedis with an error that names
// no password, and a Redis that is down is not.
func TestRedisOverTLS(t *testing.T) {
	t.Parallel()
	ca, cert, key := certs(t)
	port := freePort(t)
	cmd := exec.Command("redis-server", "-")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("bind 127.0.0.1\nport 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\n"+
		"tls-ca-cert-file %s\ntls-auth-clients no\nsave \"\"\nuser default off\nuser shop on >r-s3cret ~* &* +@all\n", port, cert, key, ca))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server (apt-get install redis-server): %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port), Username: "shop", Password: "r-s3cret", CAFile: ca}
	rdb, err := r.Client(redis.Options{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	waitFor(t, func() error { return rdb.Ping(context.Background()).Err() })
	if err := CheckRedis(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}

	r.Password = "wrong-s3cret"
	bad, err := r.Client(redis.Options{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := CheckRedis(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("wrong password: %v; want WRONGPASS, without the password", err)
	}
	down, err := Redis{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Password: "x"}.Client(redis.Options{MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if err := CheckRedis(context.Background(), down); err != nil {
		t.Errorf("Redis down: %v; want no error (an outage is ridden out)", err)
	}
}

// certs writes a new CA and a certificate for 127.0.0.1 signed by it; it returns the
// files of the CA's certificate, the server's certificate and its key.
func certs(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "secbuy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(t, ca, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	write(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})))
	write(t, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	return ca, cert, key
}

func write(t *testing.T, path, s string) {
	t.Helper()
	// Readable by the server whatever user it runs as.
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s (install it, or `make services`): %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
