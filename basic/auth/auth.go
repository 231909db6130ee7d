// Package auth mints and checks the buyers' bearer tokens: JWT, claim sub = user id; HS256
// with a shared secret, or RS256, ES256, EdDSA with an identity provider's keys (keys.go).
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
	id, _, err := verify(&keys{secret: []byte(secret)}, token, time.Now)
	return id, err
}

// verify is Verify with k at the time now returns; it also returns until when the token
// may be trusted (its expiry plus the leeway).
func verify(k *keys, token string, now func() time.Time) (int64, time.Time, error) {
	claims, exp, err := k.parse(token, now)
	if err != nil {
		return 0, time.Time{}, err
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: sub must be a positive user id", ErrBadToken)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != sub {
		return 0, time.Time{}, fmt.Errorf("%w: sub must be a positive user id", ErrBadToken)
	}
	return id, exp, nil
}

// cacheFor is the longest a verified token is remembered, however far its expiry.
const cacheFor = 10 * time.Minute

// Verifier checks bearer tokens (see Options), and remembers those that verified in a
// bounded cache of its own, each only until its own expiry: a crowd pressing again costs a
// look-up instead of a signature check and two JSON decodes (the profile of the sold-out
// scenario had a quarter of order-web's CPU in jwt parsing before).
type Verifier struct {
	keys  *keys
	cache *expirable.LRU[string, verified]
	now   func() time.Time
}

type verified struct {
	user int64
	exp  time.Time
}

// NewVerifier returns a Verifier of HS256 tokens signed with secret that remembers up to
// size tokens.
func NewVerifier(secret string, size int) *Verifier {
	return &Verifier{keys: &keys{secret: []byte(secret)}, cache: expirable.NewLRU[string, verified](size, nil, cacheFor), now: time.Now}
}

// New returns a Verifier of the tokens o describes, or an error naming the setting that
// is wrong. With a JWKS URL it fetches the set once before it returns (a provider that
// does not answer is not fatal: see jwks); a key the provider removes later empties the
// cache of verified tokens, so none of its tokens is trusted after that.
func New(o Options) (*Verifier, error) {
	if o.CacheSize < 1 {
		return nil, errors.New("auth: the token cache size must be at least 1")
	}
	k, err := newKeys(o)
	if err != nil {
		return nil, err
	}
	v := &Verifier{keys: k, cache: expirable.NewLRU[string, verified](o.CacheSize, nil, cacheFor), now: time.Now}
	if k.jwks != nil {
		k.jwks.removed = v.cache.Purge
	}
	return v, nil
}

// Verify is the package's Verify, answered from the cache when it can be.
func (v *Verifier) Verify(token string) (int64, error) {
	if t, ok := v.cache.Get(token); ok && v.now().Before(t.exp) {
		return t.user, nil
	}
	user, exp, err := verify(v.keys, token, v.now)
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
