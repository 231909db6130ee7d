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
			_, err := FromRequest(secret, r)
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}
