package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load()
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
	file := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(file, []byte(`{"admin_key":"from-file","redis_addr":"file:1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECBUY_CONFIG", file)
	t.Setenv("SECBUY_REDIS_ADDR", "env:2")
	t.Setenv("SECBUY_DB_MAX_CONNS", "7")
	t.Setenv("SECBUY_RPC_TIMEOUT", "250ms")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.AdminKey != "from-file" {
		t.Errorf("admin key = %q, want from-file", c.AdminKey)
	}
	if c.RedisAddr != "env:2" {
		t.Errorf("redis = %q, want env to beat the file", c.RedisAddr)
	}
	if c.DBMaxConns != 7 || c.RPCTimeout.Duration != 250*time.Millisecond {
		t.Errorf("got conns %d timeout %v", c.DBMaxConns, c.RPCTimeout)
	}
}

func TestLoadBadValues(t *testing.T) {
	for name, env := range map[string][2]string{
		"bad int":          {"SECBUY_DB_MAX_CONNS", "many"},
		"zero pool":        {"SECBUY_DB_MAX_CONNS", "0"},
		"bad duration":     {"SECBUY_DB_TIMEOUT", "soon"},
		"no write timeout": {"SECBUY_HTTP_WRITE_TIMEOUT", "0s"},
		"empty secret":     {"SECBUY_AUTH_SECRET", ""},
		"missing config":   {"SECBUY_CONFIG", "/nonexistent/secbuy.json"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			if _, err := Load(); err == nil {
				t.Errorf("%s=%q: want an error", env[0], env[1])
			}
		})
	}
}
