// Package auth mints and checks the buyers' bearer tokens: JWT, HS256, claim sub = user id.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrNoToken means the request carried no bearer token.
var ErrNoToken = errors.New("missing bearer token")

// ErrBadToken means the token did not verify: forged, expired, malformed or with a bad sub.
var ErrBadToken = errors.New("invalid token")

// Mint returns a token for userID that expires after ttl.
func Mint(secret string, userID int64, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

// Verify checks token and returns its user id, a positive integer. The token must be
// HS256-signed with secret and carry exp, a JSON number in the future, and sub, the user
// id as a string of plain decimal digits ("42"; not "+42" or "042").
func Verify(secret, token string) (int64, error) {
	// MapClaims, not RegisteredClaims: the latter also takes a quoted string as exp.
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return []byte(secret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return 0, fmt.Errorf("%w: sub must be a positive user id", ErrBadToken)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != sub {
		return 0, fmt.Errorf("%w: sub must be a positive user id", ErrBadToken)
	}
	return id, nil
}

// FromRequest verifies the request's "Authorization: Bearer" token.
func FromRequest(secret string, r *http.Request) (int64, error) {
	return FromRequestWith(secret, r, func(secret, token string) (int64, error) { return Verify(secret, token) })
}

// FromRequestWith is FromRequest with the verification given, e.g. a cache in front of
// Verify.
func FromRequestWith(secret string, r *http.Request, verify func(secret, token string) (int64, error)) (int64, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return 0, ErrNoToken
	}
	return verify(secret, strings.TrimSpace(token))
}
