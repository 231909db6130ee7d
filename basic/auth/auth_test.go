package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const secret = "test-secret"

func TestMintVerify(t *testing.T) {
	t.Parallel()
	tok, err := Mint(secret, 42, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(secret, tok)
	if err != nil || got != "42" {
		t.Fatalf("Verify = %q, %v; want 42, nil", got, err)
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(time.Hour).Unix()
	expired, _ := Mint(secret, 7, -time.Minute)
	forged, _ := Mint("other-secret", 7, time.Minute)
	cases := map[string]string{
		"empty":       "",
		"garbage":     "not.a.token",
		"expired":     expired,
		"forged":      forged,
		"alg none":    sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "7", "exp": future}),
		"no exp":      sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "7"}),
		"sub number":  sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": 7, "exp": future}),
		"sub empty":   sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "", "exp": future}),
		"sub missing": sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"exp": future}),
		"hs512":       sign(t, jwt.SigningMethodHS512, []byte(secret), jwt.MapClaims{"sub": "7", "exp": future}),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if id, err := Verify(secret, tok); !errors.Is(err, ErrBadToken) || id != "" {
				t.Errorf("Verify = %q, %v; want ErrBadToken", id, err)
			}
		})
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	tok, _ := Mint(secret, 9, time.Minute)
	for name, c := range map[string]struct {
		header string
		want   error
	}{
		"ok":        {"Bearer " + tok, nil},
		"missing":   {"", ErrNoToken},
		"no scheme": {tok, ErrNoToken},
		"basic":     {"Basic abc", ErrNoToken},
		"bad":       {"Bearer x.y.z", ErrBadToken},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			_, err := NewVerifier(secret, 10).FromRequest(r)
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// A cached token is trusted only until its own expiry, and only for its own secret.
func TestVerifierCache(t *testing.T) {
	t.Parallel()
	v := NewVerifier(secret, 10)
	now := time.Now()
	v.now = func() time.Time { return now }
	tok, _ := Mint(secret, 5, time.Minute)
	for range 2 {
		if id, err := v.Verify(tok); err != nil || id != "5" {
			t.Fatalf("Verify = %q, %v; want 5", id, err)
		}
	}
	if v.cache.Len() != 1 {
		t.Errorf("cache holds %d tokens, want 1", v.cache.Len())
	}
	now = now.Add(2 * time.Minute)
	if id, err := v.Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("after its expiry: Verify = %q, %v; want ErrBadToken", id, err)
	}
	if id, err := NewVerifier("other-secret", 10).Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("another secret: Verify = %q, %v; want ErrBadToken", id, err)
	}
}

// The cache is bounded: a crowd of distinct tokens does not grow it past its size.
func TestVerifierBounded(t *testing.T) {
	t.Parallel()
	v := NewVerifier(secret, 3)
	for user := int64(1); user <= 10; user++ {
		tok, _ := Mint(secret, user, time.Minute)
		if id, err := v.Verify(tok); err != nil || id != strconv.FormatInt(user, 10) {
			t.Fatalf("Verify = %q, %v; want %d", id, err, user)
		}
	}
	if n := v.cache.Len(); n != 3 {
		t.Errorf("cache holds %d tokens, want its size 3", n)
	}
}

// The sub is a string (RFC 7519): an identity provider's UUID, a name or digits are
// buyers; what is empty, longer than 255 characters, or holds a space or a control,
// format or invalid UTF-8 character is refused.
func TestVerifySub(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		sub string
		ok  bool
	}{
		"uuid":           {"6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34", true},
		"numeric":        {"42", true},
		"zero":           {"0", true},
		"leading zero":   {"042", true},
		"idp with bar":   {"auth0|5f7c8ec7c33c6c004bbafe82", true},
		"email":          {"ana@example.com", true},
		"unicode":        {"李雷", true},
		"255 chars":      {strings.Repeat("a", 255), true},
		"255 wide chars": {strings.Repeat("雷", 255), true},
		"empty":          {"", false},
		"256 chars":      {strings.Repeat("a", 256), false},
		"256 wide chars": {strings.Repeat("雷", 256), false},
		"space":          {"ana bob", false},
		"leading space":  {" 42", false},
		"tab":            {"a\tb", false},
		"newline":        {"a\nb", false},
		"nul":            {"a\x00b", false},
		"del":            {"a\x7fb", false},
		"bidi override":  {"a\u202eb", false},
		"nbsp":           {"a\u00a0b", false},
		"invalid utf-8":  {"a\xffb", false},
		"replacement":    {"a\ufffdb", false},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := MintSub(secret, c.sub, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Verify(secret, tok)
			if c.ok && (err != nil || got != c.sub) {
				t.Errorf("Verify = %q, %v; want %q", got, err, c.sub)
			}
			if !c.ok && (!errors.Is(err, ErrBadToken) || got != "") {
				t.Errorf("Verify = %q, %v; want ErrBadToken", got, err)
			}
		})
	}
}

// Invalid UTF-8 in the signed claims is refused, not read as U+FFFD.
func TestVerifySubInvalidUTF8(t *testing.T) {
	t.Parallel()
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"a`+"\xff"+`b","exp":`+exp+`}`))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(unsigned))
	tok := unsigned + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if got, err := Verify(secret, tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("Verify = %q, %v; want ErrBadToken", got, err)
	}
}
