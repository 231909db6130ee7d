package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Why a token did not verify. Each is an ErrBadToken (errors.Is), so a caller that only
// asks "bad or not" keeps working; the HTTP edge tells them apart (httpapi.User).
var (
	ErrMalformed   = badToken("malformed token")
	ErrUnsigned    = badToken("unsigned token (alg none)")
	ErrAlgorithm   = badToken("signing algorithm not accepted")
	ErrKeyMismatch = badToken("signing algorithm does not fit the key") // HS/RS confusion
	ErrUnknownKey  = badToken("unknown signing key (kid)")
	ErrSignature   = badToken("bad signature")
	ErrNoExpiry    = badToken("no exp")
	ErrExpired     = badToken("expired")
	ErrNotYetValid = badToken("not valid yet (nbf)")
	ErrIssuer      = badToken("wrong issuer (iss)")
	ErrAudience    = badToken("wrong audience (aud)")
	ErrSubject     = badToken("sub is not a buyer id")
)

func badToken(why string) error { return fmt.Errorf("%w: %s", ErrBadToken, why) }

// Options say which tokens a Verifier accepts. HS256 tokens are checked with Secret
// (when HS256 is set and Secret is not empty); RS256, ES256 and EdDSA tokens (and the
// other RSA and ECDSA algorithms) with the identity provider's keys: those of the JWKS at
// JWKSURL, picked by the token's kid, or the one key in the PEM file PublicKeyFile.
type Options struct {
	Secret string
	HS256  bool

	JWKSURL       string
	PublicKeyFile string
	// Issuer and Audience, if set, must be the token's iss and one of its aud.
	Issuer, Audience string
	// Leeway is the clock skew allowed on exp and nbf.
	Leeway time.Duration
	// JWKS: a token with an unknown kid fetches the set again, but at most once per
	// JWKSMinRefresh; a set older than JWKSMaxAge is fetched again in the background (so a
	// key the provider removed stops verifying); one fetch takes at most JWKSTimeout.
	JWKSMinRefresh, JWKSMaxAge, JWKSTimeout time.Duration

	// CacheSize bounds the cache of verified tokens (see Verifier).
	CacheSize int
}

// keys is what a token is checked with: the shared secret, the provider's keys, the
// claims asked for.
type keys struct {
	secret   []byte // nil: HS256 not accepted
	jwks     *jwks  // nil: no JWKS
	pem      crypto.PublicKey
	pemKID   string // the kid secbuy gives pem (KeyID)
	issuer   string
	audience string
	leeway   time.Duration
}

func newKeys(o Options) (*keys, error) {
	k := &keys{issuer: o.Issuer, audience: o.Audience, leeway: o.Leeway}
	if o.HS256 && o.Secret != "" {
		k.secret = []byte(o.Secret)
	}
	if o.PublicKeyFile != "" {
		pub, err := readPublicKey(o.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		if k.pemKID, err = KeyID(pub); err != nil {
			return nil, err
		}
		k.pem = pub
	}
	if o.JWKSURL != "" {
		j, err := newJWKS(o.JWKSURL, o.JWKSMinRefresh, o.JWKSMaxAge, o.JWKSTimeout)
		if err != nil {
			return nil, err
		}
		k.jwks = j
	}
	if k.secret == nil && k.pem == nil && k.jwks == nil {
		return nil, errors.New("auth: no way to check a token: set SECBUY_AUTH_SECRET with SECBUY_JWT_HS256=true, SECBUY_JWKS_URL or SECBUY_JWT_PUBLIC_KEY_FILE")
	}
	if o.Leeway < 0 {
		return nil, errors.New("auth: SECBUY_JWT_LEEWAY must not be negative")
	}
	return k, nil
}

// family is the kind of key each accepted asymmetric algorithm needs, and for ECDSA
// its curve.
var family = map[string]func(crypto.PublicKey) bool{
	"RS256": isRSA, "RS384": isRSA, "RS512": isRSA, "PS256": isRSA, "PS384": isRSA, "PS512": isRSA,
	"ES256": isCurve(elliptic.P256()), "ES384": isCurve(elliptic.P384()), "ES512": isCurve(elliptic.P521()),
	"EdDSA": func(k crypto.PublicKey) bool { _, ok := k.(ed25519.PublicKey); return ok },
}

func isRSA(k crypto.PublicKey) bool { _, ok := k.(*rsa.PublicKey); return ok }

func isCurve(c elliptic.Curve) func(crypto.PublicKey) bool {
	return func(k crypto.PublicKey) bool { e, ok := k.(*ecdsa.PublicKey); return ok && e.Curve == c }
}

// keyFor is the jwt.Keyfunc: the key of the token's algorithm family, never another.
// An HS256 token gets the shared secret and nothing else, so a token "signed" with the
// provider's public key as an HMAC secret cannot verify; an asymmetric token gets only a
// public key whose type (and curve) its algorithm needs.
func (k *keys) keyFor(t *jwt.Token) (any, error) {
	alg, _ := t.Header["alg"].(string)
	kid, hasKID := t.Header["kid"].(string)
	switch alg {
	case "none":
		return nil, ErrUnsigned
	case "HS256":
		if hasKID && k.jwks != nil {
			if _, known := k.jwks.cached(kid); known {
				return nil, ErrKeyMismatch // an HMAC token naming a public key: confusion
			}
		}
		if k.secret == nil {
			return nil, ErrAlgorithm
		}
		return k.secret, nil
	}
	fits, ok := family[alg]
	if !ok || (k.jwks == nil && k.pem == nil) {
		return nil, ErrAlgorithm
	}
	// The key file's key: the only one, or beside a JWKS for a token with no kid or its own.
	if k.jwks == nil || k.pem != nil && (!hasKID || kid == k.pemKID) {
		if !fits(k.pem) {
			return nil, ErrKeyMismatch
		}
		return k.pem, nil
	}
	if !hasKID {
		// No kid: any key of the set that fits the algorithm (jwt tries each).
		var set jwt.VerificationKeySet
		for _, key := range k.jwks.all() {
			if key.fits(alg, fits) {
				set.Keys = append(set.Keys, key.pub)
			}
		}
		if len(set.Keys) == 0 {
			return nil, ErrUnknownKey
		}
		return set, nil
	}
	key, ok := k.jwks.lookup(kid)
	if !ok {
		return nil, ErrUnknownKey
	}
	if !key.fits(alg, fits) {
		return nil, ErrKeyMismatch
	}
	return key.pub, nil
}

// parse checks token's signature and claims and returns its claims and expiry (plus the
// leeway: until when it may be trusted), or one of the errors above.
func (k *keys) parse(token string, now func() time.Time) (jwt.MapClaims, time.Time, error) {
	// MapClaims, not RegisteredClaims: the latter also takes a quoted string as exp.
	claims := jwt.MapClaims{}
	t, err := jwt.ParseWithClaims(token, claims, k.keyFor,
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(now), jwt.WithLeeway(k.leeway))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", classify(err), err)
	}
	// iss and aud are the provider's: an HS256 token is secbuy's own (signed with its
	// secret, minted without either), taken beside the provider's until HS256 is off.
	if t.Method.Alg() == "HS256" {
		return expiry(claims, k.leeway)
	}
	if k.issuer != "" {
		if iss, err := claims.GetIssuer(); err != nil || iss != k.issuer {
			return nil, time.Time{}, ErrIssuer
		}
	}
	if k.audience != "" {
		if aud, err := claims.GetAudience(); err != nil || !slices.Contains(aud, k.audience) {
			return nil, time.Time{}, ErrAudience
		}
	}
	return expiry(claims, k.leeway)
}

// expiry is until when claims may be trusted: their exp plus the leeway.
func expiry(claims jwt.MapClaims, leeway time.Duration) (jwt.MapClaims, time.Time, error) {
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, time.Time{}, ErrMalformed
	}
	return claims, exp.Add(leeway), nil
}

// classify names what jwt's error err means, keyFor's own errors first.
func classify(err error) error {
	for _, e := range []error{ErrUnsigned, ErrAlgorithm, ErrKeyMismatch, ErrUnknownKey} {
		if errors.Is(err, e) {
			return e
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrInvalidType):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrAlgorithm // an algorithm jwt does not know
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrNoExpiry // exp is the only claim jwt is asked to require
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	}
	return ErrMalformed
}

// readPublicKey reads the first PEM block of file: a PUBLIC KEY (PKIX: RSA, ECDSA or
// Ed25519), an RSA PUBLIC KEY (PKCS #1) or a CERTIFICATE.
func readPublicKey(file string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth: SECBUY_JWT_PUBLIC_KEY_FILE: %w", err)
	}
	if block, _ := pem.Decode(b); block != nil && strings.Contains(block.Type, "PRIVATE KEY") {
		// A signing key has no business on the web hosts.
		return nil, fmt.Errorf("auth: SECBUY_JWT_PUBLIC_KEY_FILE %s holds a private key: give it the public key only", file)
	}
	pub, err := ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("auth: SECBUY_JWT_PUBLIC_KEY_FILE %s: %w", file, err)
	}
	return pub, nil
}

// ParsePublicKeyPEM returns the public key of the first PEM block of b: a PUBLIC KEY, an
// RSA PUBLIC KEY or a CERTIFICATE; or, for a private key's block, its public half.
func ParsePublicKeyPEM(b []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		var priv crypto.Signer
		if priv, err = ParsePrivateKeyPEM(b); err == nil {
			pub = priv.Public()
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	if _, ok := family[algOf(pub)]; !ok {
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	return pub, nil
}

// ParsePrivateKeyPEM returns the private key of the first PEM block of b: PKCS #8
// (PRIVATE KEY), PKCS #1 (RSA PRIVATE KEY) or SEC 1 (EC PRIVATE KEY).
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok || algOf(s.Public()) == "" {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return s, nil
}

// algOf is the algorithm secbuy signs with for a key of pub's type: RS256, ES256 (P-256),
// ES384, ES512 or EdDSA; "" for another.
func algOf(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RS256"
	case ed25519.PublicKey:
		return "EdDSA"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256"
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
	}
	return ""
}

// Sign returns claims signed with key (RS256 for an RSA key, ES256, ES384 or ES512 for
// an ECDSA key, EdDSA for an Ed25519 key), with the key's KeyID as kid: a development
// token of an identity provider.
func Sign(key crypto.Signer, claims jwt.Claims) (string, error) {
	alg := algOf(key.Public())
	if alg == "" {
		return "", fmt.Errorf("unsupported key type %T", key)
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return "", err
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}
