package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"secbuy/basic/auth"
)

const testSecret = "token-command-test-secret-of-32-bytes-or-more"

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	t.Setenv("SECBUY_AUTH_SECRET", testSecret)
	t.Setenv("SECBUY_ADMIN_KEY", "token-command-test-admin-key-of-32-bytes-or-more")
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatalf("token %v: %v", args, err)
	}
	return strings.TrimSpace(out.String())
}

// Today's use: an HS256 token of the secret (make token USER_ID=42).
func TestHS256(t *testing.T) {
	tok := runOK(t, "-user", "42")
	if id, err := auth.Verify(testSecret, tok); err != nil || id != "42" {
		t.Fatalf("Verify = %q, %v; want 42", id, err)
	}
}

// A generated key pair: tokens minted with its private key verify against its JWKS
// (served as a file) and against its PEM public key, with iss and aud checked.
func TestGenkeyMintVerify(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	for _, kind := range []string{"rsa", "ec", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			prefix := filepath.Join(dir, kind)
			runOK(t, "-genkey", kind, "-out", prefix)
			tok := runOK(t, "-key", prefix+".key", "-user", "7", "-iss", "https://idp.test", "-aud", "secbuy", "-ttl", "1m")
			for name, o := range map[string]auth.Options{
				"jwks": {JWKSURL: srv.URL + "/" + kind + ".jwks.json", JWKSMinRefresh: time.Second, JWKSMaxAge: time.Minute, JWKSTimeout: time.Second},
				"pem":  {PublicKeyFile: prefix + ".pub"},
			} {
				o.Issuer, o.Audience, o.CacheSize = "https://idp.test", "secbuy", 10
				v, err := auth.New(o)
				if err != nil {
					t.Fatal(err)
				}
				if id, err := v.Verify(tok); err != nil || id != "7" {
					t.Errorf("%s: Verify = %q, %v; want 7", name, id, err)
				}
			}
		})
	}
}

// -jwks prints the set of several keys (public or private PEM), each with its own kid.
func TestJWKSOfTwo(t *testing.T) {
	dir := t.TempDir()
	runOK(t, "-genkey", "ec", "-out", filepath.Join(dir, "a"))
	runOK(t, "-genkey", "rsa", "-out", filepath.Join(dir, "b"))
	out := runOK(t, "-jwks", filepath.Join(dir, "a.pub")+","+filepath.Join(dir, "b.key"))
	var set struct {
		Keys []struct {
			KID, KTY, ALG, D string
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].KID == set.Keys[1].KID || set.Keys[0].ALG != "ES256" || set.Keys[1].ALG != "RS256" {
		t.Errorf("JWKS %s; want an ES256 and an RS256 key with distinct kids", out)
	}
	if strings.Contains(out, `"d"`) {
		t.Errorf("the JWKS carries a private part: %s", out)
	}
}
