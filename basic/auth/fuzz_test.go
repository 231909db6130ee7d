package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// accepted checks, independently of the jwt library, what Verify must hold of a token it
// accepted as buyer id: three base64url parts, an HS256 header, an HMAC-SHA256 signature
// by secret, an exp in the future, and a sub that is id, 1 to 255 printable characters.
func accepted(t *testing.T, token string, id string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted %q: %d parts", token, len(parts))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatalf("accepted %q: not signed with the secret (%v)", token, err)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(b, &header) != nil || header.Alg != "HS256" {
		t.Fatalf("accepted %q: header is not HS256 (%s)", token, b)
	}
	var claims map[string]any
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &claims) != nil {
		t.Fatalf("accepted %q: claims %q do not decode", token, b)
	}
	exp, ok := claims["exp"].(float64)
	if !ok || exp < float64(time.Now().Unix()) {
		t.Fatalf("accepted %q: exp %v is missing or past", token, claims["exp"])
	}
	sub, _ := claims["sub"].(string)
	n := utf8.RuneCountInString(sub)
	if sub != id || n < 1 || n > 255 || !utf8.ValidString(sub) || strings.IndexFunc(sub, func(c rune) bool { return !unicode.IsPrint(c) || c == ' ' || c == utf8.RuneError }) >= 0 {
		t.Fatalf("accepted %q as user %q: sub %q", token, id, claims["sub"])
	}
}

// FuzzVerify: Verify never panics and accepts only what accepted allows.
func FuzzVerify(f *testing.F) {
	good, _ := Mint(secret, 42, time.Hour)
	forged, _ := Mint("other", 42, time.Hour)
	expired, _ := Mint(secret, 42, -time.Hour)
	for _, s := range []string{good, forged, expired, "", ".", "..", "a.b.c", good + ".", "." + good,
		good[:len(good)-1], strings.ToUpper(good), strings.Replace(good, ".", "..", 1),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiI3In0.", strings.Repeat("a", 4000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := Verify(secret, token)
		if err == nil {
			accepted(t, token, id)
		} else if id != "" {
			t.Fatalf("refused %q but returned user %q", token, id)
		}
	})
}

// FuzzVerifyClaims signs fuzzed headers and claims, with the secret or another key, so
// that the fuzzer reaches the checks behind the signature: only HS256, the secret, a
// future exp and a sub of 1 to 255 printable characters may pass.
func FuzzVerifyClaims(f *testing.F) {
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	hs := `{"alg":"HS256","typ":"JWT"}`
	for _, c := range []struct {
		header, claims string
		rightKey       bool
	}{
		{hs, `{"sub":"42","exp":` + exp + `}`, true},
		{hs, `{"sub":"42","exp":` + exp + `}`, false},
		{hs, `{"sub":"42"}`, true},
		{hs, `{"sub":"42","exp":1}`, true},
		{hs, `{"sub":"42","exp":"` + exp + `"}`, true},
		{hs, `{"sub":"42","exp":1e300}`, true},
		{hs, `{"sub":"42","exp":` + exp + `.5}`, true},
		{hs, `{"sub":42,"exp":` + exp + `}`, true},
		{hs, `{"sub":"0","exp":` + exp + `}`, true},
		{hs, `{"sub":"-1","exp":` + exp + `}`, true},
		{hs, `{"sub":"+42","exp":` + exp + `}`, true},
		{hs, `{"sub":"042","exp":` + exp + `}`, true},
		{hs, `{"sub":" 42","exp":` + exp + `}`, true},
		{hs, `{"sub":"9223372036854775808","exp":` + exp + `}`, true},
		{hs, `{"sub":"42","exp":` + exp + `,"nbf":9999999999}`, true},
		{hs, `{"sub":"42","sub":"43","exp":` + exp + `}`, true},
		{hs, `{"sub":"6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34","exp":` + exp + `}`, true},
		{hs, `{"sub":"","exp":` + exp + `}`, true},
		{hs, `{"sub":"a\u0000b","exp":` + exp + `}`, true},
		{hs, `{"sub":"a\u202eb","exp":` + exp + `}`, true},
		{hs, `{"sub":"` + strings.Repeat("x", 256) + `","exp":` + exp + `}`, true},
		{hs, `[]`, true},
		{hs, `null`, true},
		{`{"alg":"none"}`, `{"sub":"42","exp":` + exp + `}`, true},
		{`{"alg":"HS512"}`, `{"sub":"42","exp":` + exp + `}`, true},
		{`{"alg":"hs256"}`, `{"sub":"42","exp":` + exp + `}`, true},
		{`{"alg":"RS256"}`, `{"sub":"42","exp":` + exp + `}`, true},
		{`{}`, `{"sub":"42","exp":` + exp + `}`, true},
		{`{"alg":["HS256"]}`, `{"sub":"42","exp":` + exp + `}`, true},
	} {
		f.Add(c.header, c.claims, c.rightKey)
	}
	f.Fuzz(func(t *testing.T, header, claims string, rightKey bool) {
		key := []byte(secret)
		if !rightKey {
			key = []byte("another-secret")
		}
		unsigned := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(unsigned))
		token := unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		id, err := Verify(secret, token)
		if err != nil {
			return
		}
		if !rightKey {
			t.Fatalf("accepted a token signed with another key: %s %s", header, claims)
		}
		accepted(t, token, id)
		// What was accepted is what was signed: a changed claim breaks it.
		if _, err := Verify(secret, unsigned+"."+base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0}, 32))); err == nil {
			t.Fatalf("accepted a zero signature")
		}
	})
}
