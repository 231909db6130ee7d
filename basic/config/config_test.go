package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := load([]string{"SECBUY_DEV=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.StockWebAddr != "127.0.0.1:8087" || c.OrderWebAddr != "127.0.0.1:8088" || c.PaymentWebAddr != "127.0.0.1:8089" {
		t.Errorf("web addresses = %q %q %q, want ports 8087 8088 8089", c.StockWebAddr, c.OrderWebAddr, c.PaymentWebAddr)
	}
	if c.DBTimeout.Duration != 3*time.Second {
		t.Errorf("db timeout = %v, want 3s", c.DBTimeout)
	}
}

func TestLoadOverrides(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(`{"admin_key":"from-file-from-file-from-file-0032","redis_addr":"file:1","pay_timeout":"2m"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load([]string{
		"SECBUY_DEV=1",
		"SECBUY_CONFIG=" + file,
		"SECBUY_REDIS_ADDR=env:2",
		"SECBUY_DB_MAX_CONNS=7",
		"SECBUY_RPC_TIMEOUT=250ms",
		"SECBUY_CHAOS_SEED=1", // not a setting, but a known variable of the tests
		"OTHER_THING=x",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminKey != "from-file-from-file-from-file-0032" || c.PayTimeout.Duration != 2*time.Minute {
		t.Errorf("admin key %q, pay timeout %v: want the file's key, 2m", c.AdminKey, c.PayTimeout)
	}
	if c.RedisAddr != "env:2" {
		t.Errorf("redis = %q, want env to beat the file", c.RedisAddr)
	}
	if c.DBMaxConns != 7 || c.RPCTimeout.Duration != 250*time.Millisecond {
		t.Errorf("got conns %d timeout %v", c.DBMaxConns, c.RPCTimeout)
	}
}

// A bad setting fails with a message that names it.
func TestLoadBadValues(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"pay_timout":"2m"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	twice := filepath.Join(t.TempDir(), "twice.json")
	if err := os.WriteFile(twice, []byte(`{"admin_key":"a"} {"admin_key":"b"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env, want string
	}{
		{"bad duration", "SECBUY_PAY_TIMEOUT=abc", "SECBUY_PAY_TIMEOUT"},
		{"bad int", "SECBUY_DB_MAX_CONNS=many", "SECBUY_DB_MAX_CONNS"},
		{"zero pool", "SECBUY_DB_MAX_CONNS=0", "SECBUY_DB_MAX_CONNS"},
		{"no write timeout", "SECBUY_HTTP_WRITE_TIMEOUT=0s", "SECBUY_HTTP_WRITE_TIMEOUT"},
		{"empty secret", "SECBUY_AUTH_SECRET=", "SECBUY_AUTH_SECRET"},
		{"empty admin key", "SECBUY_ADMIN_KEY=", "SECBUY_ADMIN_KEY"},
		{"short secret", "SECBUY_AUTH_SECRET=" + strings.Repeat("s", MinSecretBytes-1), "SECBUY_AUTH_SECRET is 31 bytes: it must be at least 32"},
		{"bad dev flag", "SECBUY_DEV=maybe", "SECBUY_DEV"},
		{"misspelt setting", "SECBUY_PAY_TIMOUT=5s", "SECBUY_PAY_TIMOUT"},
		{"missing config file", "SECBUY_CONFIG=/nonexistent/secbuy.json", "/nonexistent/secbuy.json"},
		{"unknown key in the file", "SECBUY_CONFIG=" + bad, "pay_timout"},
		{"two values in the file", "SECBUY_CONFIG=" + twice, "more than one JSON value"},
		{"empty database", "SECBUY_DATABASE_URL=", "SECBUY_DATABASE_URL"},
		{"empty nats", "SECBUY_NATS_URL=", "SECBUY_NATS_URL"},
		{"negative recovery age", "SECBUY_RECOVER_AFTER=-1s", "SECBUY_RECOVER_AFTER"},
		{"no inflight slots", "SECBUY_MAX_INFLIGHT=0", "SECBUY_MAX_INFLIGHT"},
		{"no queue wait", "SECBUY_QUEUE_WAIT=0s", "SECBUY_QUEUE_WAIT"},
		{"no inflight ttl", "SECBUY_INFLIGHT_TTL=0s", "SECBUY_INFLIGHT_TTL"},
		{"negative rate", "SECBUY_RATE_IP_PER_SEC=-1", "SECBUY_RATE_IP_PER_SEC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load([]string{"SECBUY_DEV=1", tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: error %v, want one naming %s", tc.env, err, tc.want)
			}
		})
	}
}

// Secrets have no default outside development mode, and a short one is refused.
func TestLoadSecrets(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("a", MinSecretBytes)
	key := strings.Repeat("k", MinSecretBytes)
	short := strings.Repeat("x", MinSecretBytes-1)
	for _, tc := range []struct {
		name string
		env  []string
		want []string // in the error, in order; none: no error
	}{
		{"nothing set", nil, []string{"SECBUY_AUTH_SECRET is not set", "SECBUY_ADMIN_KEY is not set"}},
		{"dev off", []string{"SECBUY_DEV=0"}, []string{"SECBUY_AUTH_SECRET is not set"}},
		{"admin key missing", []string{"SECBUY_AUTH_SECRET=" + secret}, []string{"SECBUY_ADMIN_KEY is not set"}},
		{"auth secret missing", []string{"SECBUY_ADMIN_KEY=" + key}, []string{"SECBUY_AUTH_SECRET is not set"}},
		{"both set", []string{"SECBUY_AUTH_SECRET=" + secret, "SECBUY_ADMIN_KEY=" + key}, nil},
		{"short secret", []string{"SECBUY_AUTH_SECRET=" + short, "SECBUY_ADMIN_KEY=" + key}, []string{"SECBUY_AUTH_SECRET is 31 bytes: it must be at least 32"}},
		{"short admin key", []string{"SECBUY_AUTH_SECRET=" + secret, "SECBUY_ADMIN_KEY=" + short}, []string{"SECBUY_ADMIN_KEY is 31 bytes"}},
		{"short secret in dev", []string{"SECBUY_DEV=1", "SECBUY_AUTH_SECRET=" + short}, []string{"SECBUY_AUTH_SECRET is 31 bytes"}},
		{"dev defaults", []string{"SECBUY_DEV=1"}, nil},
		{"dev login outside dev", []string{"SECBUY_AUTH_SECRET=" + secret, "SECBUY_ADMIN_KEY=" + key, "SECBUY_DEV_LOGIN=1"}, []string{"SECBUY_DEV_LOGIN needs SECBUY_DEV=1"}},
		{"dev login in dev", []string{"SECBUY_DEV=1", "SECBUY_DEV_LOGIN=1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(tc.env)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				if len(c.AuthSecret) < MinSecretBytes || len(c.AdminKey) < MinSecretBytes {
					t.Errorf("secrets of %d and %d bytes, want at least %d", len(c.AuthSecret), len(c.AdminKey), MinSecretBytes)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one saying %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), short) {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// Development mode's secrets are the published ones; any other mode has none.
func TestDevDefaults(t *testing.T) {
	t.Parallel()
	dev, err := load([]string{"SECBUY_DEV=1"})
	if err != nil {
		t.Fatal(err)
	}
	if !dev.Dev || dev.AuthSecret == "" || dev.AdminKey == "" {
		t.Errorf("dev mode: dev %v, secret %q, key %q: want dev on with both secrets", dev.Dev, dev.AuthSecret, dev.AdminKey)
	}
	prod, _ := load(nil)
	if prod.Dev || prod.AuthSecret != "" || prod.AdminKey != "" {
		t.Errorf("no dev mode: dev %v, secret %q, key %q: want neither secret", prod.Dev, prod.AuthSecret, prod.AdminKey)
	}
}
