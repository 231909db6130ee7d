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
	"github.com/hashicorp/golang-lru/v2/expirable"
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
	id, _, err := verify(secret, token, time.Now)
	return id, err
}

// verify is Verify at the time now returns; it also returns the token's expiry.
func verify(secret, token string, now func() time.Time) (int64, time.Time, error) {
	// MapClaims, not RegisteredClaims: the latter also takes a quoted string as exp.
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return []byte(secret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(now))
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return 0, time.Time{}, fmt.Errorf("%w: exp must be a number", ErrBadToken)
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: sub must be a positive user id", ErrBadToken)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != sub {
		return 0, time.Time{}, fmt.Errorf("%w: sub must be a positive user id", ErrBadToken)
	}
	return id, exp.Time, nil
}

// cacheFor is the longest a verified token is remembered, however far its expiry.
const cacheFor = 10 * time.Minute

// Verifier checks bearer tokens with one secret, and remembers those that verified in a
// bounded cache of its own, each only until its own expiry: a crowd pressing again costs a
// look-up instead of a signature check and two JSON decodes (the profile of the sold-out
// scenario had a quarter of order-web's CPU in jwt parsing before).
type Verifier struct {
	secret string
	cache  *expirable.LRU[string, verified]
	now    func() time.Time
}

type verified struct {
	user int64
	exp  time.Time
}

// NewVerifier returns a Verifier of secret that remembers up to size tokens.
func NewVerifier(secret string, size int) *Verifier {
	return &Verifier{secret: secret, cache: expirable.NewLRU[string, verified](size, nil, cacheFor), now: time.Now}
}

// Verify is the package's Verify, answered from the cache when it can be.
func (v *Verifier) Verify(token string) (int64, error) {
	if t, ok := v.cache.Get(token); ok && v.now().Before(t.exp) {
		return t.user, nil
	}
	user, exp, err := verify(v.secret, token, v.now)
	if err != nil {
		return 0, err
	}
	v.cache.Add(token, verified{user: user, exp: exp})
	return user, nil
}

// FromRequest verifies the request's "Authorization: Bearer" token: ErrNoToken if there
// is none, an ErrBadToken error if it does not verify.
func (v *Verifier) FromRequest(r *http.Request) (int64, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token = strings.TrimSpace(token); !ok || token == "" {
		return 0, ErrNoToken
	}
	return v.Verify(token)
}
