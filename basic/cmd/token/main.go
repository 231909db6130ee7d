// Command token prints a development bearer token for a user id. By default it is HS256,
// signed with the configured secret (SECBUY_AUTH_SECRET, or with SECBUY_DEV=1 the development
// one; `make token` sets it); with -key it is signed with a private key as an identity
// provider would (RS256, ES256 or EdDSA by the key's type, kid the key's auth.KeyID, iss and
// aud from -iss and -aud or SECBUY_JWT_ISSUER and SECBUY_JWT_AUDIENCE). -genkey writes a key
// pair and its JWKS; -jwks prints the JWKS of keys (to publish two during a rotation):
//
//	SECBUY_DEV=1 go run ./basic/cmd/token -user 42
//	SECBUY_DEV=1 go run ./basic/cmd/token -sub 6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34
//	go run ./basic/cmd/token -genkey ec -out dev/idp        # dev/idp.key, .pub, .jwks.json
//	SECBUY_DEV=1 go run ./basic/cmd/token -key dev/idp.key -user 42
//	go run ./basic/cmd/token -jwks dev/idp.pub,dev/idp2.pub > jwks.json
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"secbuy/basic/auth"
	"secbuy/basic/buyer"
	"secbuy/basic/config"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	user := fs.Int64("user", 1, "user id (the token's sub)")
	sub := fs.String("sub", "", "the token's sub as a string, as an identity provider gives it (instead of -user)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	keyFile := fs.String("key", "", "sign with this private key (PEM) instead of the shared secret")
	iss := fs.String("iss", "", "with -key: the token's iss (default SECBUY_JWT_ISSUER)")
	aud := fs.String("aud", "", "with -key: the token's aud (default SECBUY_JWT_AUDIENCE)")
	genkey := fs.String("genkey", "", "write a new key pair of this type (rsa, ec or ed25519) and its JWKS to -out.{key,pub,jwks.json}")
	outPrefix := fs.String("out", "dev-idp", "with -genkey: the files' path without extension")
	jwks := fs.String("jwks", "", "print the JWKS of these comma-separated PEM key files (public or private)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *genkey != "":
		return genKey(*genkey, *outPrefix, out)
	case *jwks != "":
		return printJWKS(strings.Split(*jwks, ","), out)
	}
	if *sub == "" && *user <= 0 {
		return errors.New("-user must be a positive integer")
	}
	if *sub == "" {
		*sub = buyer.FromID(*user)
	}
	if err := buyer.Check(*sub); err != nil {
		return fmt.Errorf("-sub: %w", err)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	var tok string
	if *keyFile == "" {
		tok, err = auth.MintSub(cfg.AuthSecret, *sub, *ttl)
	} else {
		tok, err = mintWithKey(*keyFile, *sub, *ttl, or(*iss, cfg.JWTIssuer), or(*aud, cfg.JWTAudience))
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// mintWithKey is a token of user signed with the private key in file.
func mintWithKey(file, sub string, ttl time.Duration, iss, aud string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	key, err := auth.ParsePrivateKeyPEM(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if iss != "" {
		claims["iss"] = iss
	}
	if aud != "" {
		claims["aud"] = aud
	}
	return auth.Sign(key, claims)
}

// genKey writes a new key pair of kind to prefix.key (PKCS #8, readable by its owner
// only), prefix.pub (PKIX) and prefix.jwks.json.
func genKey(kind, prefix string, out io.Writer) error {
	var key crypto.Signer
	var err error
	switch kind {
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ec":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return fmt.Errorf("-genkey %q: want rsa, ec or ed25519", kind)
	}
	if err != nil {
		return err
	}
	priv, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	set, err := auth.PublicJWKS(key.Public())
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{prefix + ".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}), 0o600},
		{prefix + ".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644},
		{prefix + ".jwks.json", append(set, '\n'), 0o644},
	} {
		if err := os.WriteFile(f.name, f.data, f.mode); err != nil {
			return err
		}
	}
	kid, err := auth.KeyID(key.Public())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "wrote %[1]s.key (private), %[1]s.pub and %[1]s.jwks.json (kid %[2]s)\n"+
		"verify with SECBUY_JWT_PUBLIC_KEY_FILE=%[1]s.pub, or serve %[1]s.jwks.json and set SECBUY_JWKS_URL\n"+
		"mint with: go run ./basic/cmd/token -key %[1]s.key -user 42\n", prefix, kid)
	return err
}

// printJWKS prints the JWKS of the keys in files.
func printJWKS(files []string, out io.Writer) error {
	var pubs []crypto.PublicKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		pub, err := auth.ParsePublicKeyPEM(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		pubs = append(pubs, pub)
	}
	set, err := auth.PublicJWKS(pubs...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", set)
	return err
}
