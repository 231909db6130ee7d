package auth

import "secbuy/basic/config"

// FromConfig returns the Verifier every web service that checks bearer tokens uses,
// made from cfg's SECBUY_AUTH_SECRET, SECBUY_JWT_* and SECBUY_JWKS_* settings.
func FromConfig(cfg config.Config) (*Verifier, error) {
	return New(Options{
		Secret: cfg.AuthSecret, HS256: cfg.JWTHS256,
		JWKSURL: cfg.JWKSURL, PublicKeyFile: cfg.JWTPublicKeyFile,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway.Duration,
		JWKSMinRefresh: cfg.JWKSMinRefresh.Duration, JWKSMaxAge: cfg.JWKSMaxAge.Duration,
		JWKSTimeout: cfg.JWKSTimeout.Duration, CacheSize: cfg.TokenCacheSize,
	})
}
