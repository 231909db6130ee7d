package auth

import (
	"errors"
	"net/http/httptest"
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
	if err != nil || got != 42 {
		t.Fatalf("Verify = %d, %v; want 42, nil", got, err)
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
		"sub text":    sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "bob", "exp": future}),
		"sub zero":    sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"sub": "0", "exp": future}),
		"sub missing": sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"exp": future}),
		"hs512":       sign(t, jwt.SigningMethodHS512, []byte(secret), jwt.MapClaims{"sub": "7", "exp": future}),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if id, err := Verify(secret, tok); !errors.Is(err, ErrBadToken) {
				t.Errorf("Verify = %d, %v; want ErrBadToken", id, err)
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
		if id, err := v.Verify(tok); err != nil || id != 5 {
			t.Fatalf("Verify = %d, %v; want 5", id, err)
		}
	}
	if v.cache.Len() != 1 {
		t.Errorf("cache holds %d tokens, want 1", v.cache.Len())
	}
	now = now.Add(2 * time.Minute)
	if id, err := v.Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("after its expiry: Verify = %d, %v; want ErrBadToken", id, err)
	}
	if id, err := NewVerifier("other-secret", 10).Verify(tok); !errors.Is(err, ErrBadToken) {
		t.Errorf("another secret: Verify = %d, %v; want ErrBadToken", id, err)
	}
}

// The cache is bounded: a crowd of distinct tokens does not grow it past its size.
func TestVerifierBounded(t *testing.T) {
	t.Parallel()
	v := NewVerifier(secret, 3)
	for user := int64(1); user <= 10; user++ {
		tok, _ := Mint(secret, user, time.Minute)
		if id, err := v.Verify(tok); err != nil || id != user {
			t.Fatalf("Verify = %d, %v; want %d", id, err, user)
		}
	}
	if n := v.cache.Len(); n != 3 {
		t.Errorf("cache holds %d tokens, want its size 3", n)
	}
}
