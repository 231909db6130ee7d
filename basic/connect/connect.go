// Package connect builds secbuy's connections to NATS (the event stream and go-micro's
// registry) and Redis from the configuration: the servers, the credentials and the TLS
// settings, in this one place, so that every connection a service or a tool makes uses
// the same ones. It also takes credentials out of a URL before it is shown (Redact): no
// password, token or key reaches a log line or an error message.
package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go-micro.dev/v6/registry"
	natsreg "go-micro.dev/v6/registry/nats"

	"secbuy/basic/config"
)

// NATS is how to reach NATS: URL is one URL or a comma-separated list of a cluster's
// (nats:// or tls://, which asks for TLS; user:password@ or token@ in a URL work too), the
// rest the credentials and TLS files of config's nats_* settings. Set at most one of
// User/Password, Token, NKeyFile and CredsFile. A CA file, a client certificate or a tls://
// URL makes every connection use TLS.
type NATS struct {
	URL                       string
	User, Password, Token     string
	NKeyFile, CredsFile       string
	CAFile, CertFile, KeyFile string
}

// NATSOf returns the NATS settings of c.
func NATSOf(c config.Config) NATS {
	return NATS{URL: c.NATSURL, User: c.NATSUser, Password: c.NATSPassword, Token: c.NATSToken,
		NKeyFile: c.NATSNKeyFile, CredsFile: c.NATSCredsFile,
		CAFile: c.NATSCAFile, CertFile: c.NATSCertFile, KeyFile: c.NATSKeyFile}
}

// Servers returns the URLs, each without spaces, and whether any asks for TLS (tls://).
func (n NATS) Servers() ([]string, bool) {
	var out []string
	secure := false
	for _, u := range strings.Split(n.URL, ",") {
		if u = strings.TrimSpace(u); u == "" {
			continue
		}
		secure = secure || strings.HasPrefix(u, "tls://")
		out = append(out, u)
	}
	return out, secure
}

// String is the URLs with their credentials taken out.
func (n NATS) String() string { return Redact(n.URL) }

// Options returns the nats.go options of the credentials and TLS settings (not the
// servers), or an error naming the setting that is wrong.
func (n NATS) Options() ([]nats.Option, error) {
	var opts []nats.Option
	auths := 0
	if n.User != "" || n.Password != "" {
		if n.User == "" {
			return nil, errors.New("SECBUY_NATS_PASSWORD is set without SECBUY_NATS_USER")
		}
		auths++
		opts = append(opts, nats.UserInfo(n.User, n.Password))
	}
	if n.Token != "" {
		auths++
		opts = append(opts, nats.Token(n.Token))
	}
	if n.NKeyFile != "" {
		auths++
		o, err := nats.NkeyOptionFromSeed(n.NKeyFile)
		if err != nil {
			// The library's message names the file, never the seed.
			return nil, fmt.Errorf("SECBUY_NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, o)
	}
	if n.CredsFile != "" {
		auths++
		if _, err := os.Stat(n.CredsFile); err != nil {
			return nil, fmt.Errorf("SECBUY_NATS_CREDS_FILE: %w", err)
		}
		opts = append(opts, nats.UserCredentials(n.CredsFile))
	}
	if auths > 1 {
		return nil, errors.New("set one of SECBUY_NATS_USER/SECBUY_NATS_PASSWORD, SECBUY_NATS_TOKEN, SECBUY_NATS_NKEY_FILE and SECBUY_NATS_CREDS_FILE, not several")
	}
	_, secure := n.Servers()
	if secure || n.CAFile != "" || n.CertFile != "" || n.KeyFile != "" {
		tc, err := tlsConfig("SECBUY_NATS", n.CAFile, n.CertFile, n.KeyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// Connect connects to NATS as name with the settings, then extra options. Its error names
// the servers without their credentials.
func (n NATS) Connect(name string, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := n.Options()
	if err != nil {
		return nil, err
	}
	servers, _ := n.Servers()
	nc, err := nats.Connect(strings.Join(servers, ","), append(append(opts, nats.Name(name)), extra...)...)
	if err != nil {
		return nil, n.connectError(err)
	}
	return nc, nil
}

// connectError is err of a connection to the servers, with a hint if they refused it.
func (n NATS) connectError(err error) error {
	if Refused(err) {
		return fmt.Errorf("connect to nats at %s: refused (check SECBUY_NATS_USER, SECBUY_NATS_PASSWORD, SECBUY_NATS_TOKEN, SECBUY_NATS_NKEY_FILE, SECBUY_NATS_CREDS_FILE and the TLS settings): %w", n, err)
	}
	return fmt.Errorf("connect to nats at %s: %w", n, err)
}

// Registry returns go-micro's NATS registry on the servers, with the same credentials and
// TLS; its connection reconnects forever (go-micro's default gives up after two minutes,
// and its registry then never connects again). Before it returns, it connects once: a
// server that refuses the credentials or the TLS is an error (a wrong password must stop
// a service at its start, not leave it running unregistered), while no server answering
// is not (the registry connects once one does, as before).
func (n NATS) Registry() (registry.Registry, error) {
	opts, err := n.Options()
	if err != nil {
		return nil, err
	}
	no := nats.GetDefaultOptions()
	for _, o := range append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond)) {
		if err := o(&no); err != nil {
			return nil, fmt.Errorf("nats options: %w", err)
		}
	}
	if err := n.probe(opts); err != nil {
		return nil, err
	}
	// go-micro's registry prefixes nats:// to any address that lacks it, tls:// included:
	// a tls:// URL's TLS is asked for by the options instead.
	servers, _ := n.Servers()
	for i, s := range servers {
		if rest, ok := strings.CutPrefix(s, "tls://"); ok {
			servers[i] = "nats://" + rest
		}
	}
	return natsreg.NewNatsRegistry(registry.Addrs(servers...), natsreg.NatsOptions(no)), nil
}

// probe connects once and reports a refusal of the credentials or of the TLS.
func (n NATS) probe(opts []nats.Option) error {
	servers, _ := n.Servers()
	nc, err := nats.Connect(strings.Join(servers, ","), append(opts, nats.Name("secbuy probe"), nats.Timeout(2*time.Second))...)
	if err == nil {
		nc.Close()
		return nil
	}
	if Refused(err) {
		return n.connectError(err)
	}
	return nil
}

// Refused reports whether err is a server's refusal of the credentials or a failed TLS
// handshake: settings to fix, not an outage to wait out.
func Refused(err error) bool {
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked,
		nats.ErrAccountAuthExpired, nats.ErrSecureConnRequired, nats.ErrSecureConnWanted, nats.ErrNkeysNotSupported} {
		if errors.Is(err, e) {
			return true
		}
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var rh tls.RecordHeaderError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &rh) {
		return true
	}
	s := err.Error()
	for _, w := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "Authorization Violation", "tls: "} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// Redis is how to reach Redis: Addr (host:port), the ACL user and password (Username may
// be empty: the default user, as with requirepass), and TLS (on when TLS is set or a CA
// or client certificate file is given).
type Redis struct {
	Addr, Username, Password  string
	TLS                       bool
	CAFile, CertFile, KeyFile string
}

// RedisOf returns the Redis settings of c.
func RedisOf(c config.Config) Redis {
	return Redis{Addr: c.RedisAddr, Username: c.RedisUsername, Password: c.RedisPassword, TLS: c.RedisTLS,
		CAFile: c.RedisCAFile, CertFile: c.RedisCertFile, KeyFile: c.RedisKeyFile}
}

// Client returns a Redis client with the settings on top of base (its timeouts and pool).
func (r Redis) Client(base redis.Options) (*redis.Client, error) {
	base.Addr, base.Username, base.Password = r.Addr, r.Username, r.Password
	if r.TLS || r.CAFile != "" || r.CertFile != "" || r.KeyFile != "" {
		tc, err := tlsConfig("SECBUY_REDIS", r.CAFile, r.CertFile, r.KeyFile)
		if err != nil {
			return nil, err
		}
		if host, _, err := net.SplitHostPort(r.Addr); err == nil {
			tc.ServerName = host
		}
		base.TLSConfig = tc
	}
	return redis.NewClient(&base), nil
}

// CheckRedis pings rdb (bounded by 2 s) and returns an error only if Redis refused the
// credentials or the TLS: a Redis that is down or slow is an outage the callers ride out.
func CheckRedis(ctx context.Context, rdb *redis.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := rdb.Ping(ctx).Err()
	if err == nil || !Refused(err) {
		return nil
	}
	return fmt.Errorf("redis at %s refused the connection (check SECBUY_REDIS_USERNAME, SECBUY_REDIS_PASSWORD and the TLS settings): %w", rdb.Options().Addr, err)
}

// tlsConfig is TLS 1.2 or later, trusting caFile's certificates (the system's if empty),
// with the client certificate of certFile and keyFile if given; prefix names the settings.
func tlsConfig(prefix, caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%s_CA_FILE: %w", prefix, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s_CA_FILE %s: no PEM certificate in it", prefix, caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%s_CERT_FILE and %s_KEY_FILE go together", prefix, prefix)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s_CERT_FILE/%s_KEY_FILE: %w", prefix, prefix, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Redact returns s (a URL, or a comma-separated list of them) with the password, or a
// user or token standing alone, replaced by "xxxxx", and any password= query parameter
// likewise: what a log line or an error message may show.
func Redact(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = redactOne(p)
	}
	return strings.Join(parts, ",")
}

func redactOne(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		// Not a URL this can take apart: show only what follows the last '@'.
		if at := strings.LastIndex(s, "@"); at >= 0 {
			return "xxxxx@" + s[at+1:]
		}
		return s
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a token, or an nkey
		}
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "xxxxx")
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
