// Command token prints a development bearer token for a user id, signed with the configured
// secret (SECBUY_AUTH_SECRET or the local default):
//
//	go run ./basic/cmd/token -user 42
//	go run ./basic/cmd/token -sub 6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34
package main

import (
	"flag"
	"fmt"
	"log"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/buyer"
	"secbuy/basic/config"
)

func main() {
	user := flag.Int64("user", 1, "user id (the token's sub)")
	sub := flag.String("sub", "", "the token's sub as a string, as an identity provider gives it (instead of -user)")
	ttl := flag.Duration("ttl", 24*time.Hour, "how long the token is valid")
	flag.Parse()
	cfg, err := config.Load()
	if err != nil {
		log.Fatal(err)
	}
	if *sub == "" && *user <= 0 {
		log.Fatal("-user must be a positive integer")
	}
	if *sub == "" {
		*sub = buyer.FromID(*user)
	}
	if err := buyer.Check(*sub); err != nil {
		log.Fatalf("-sub: %v", err)
	}
	tok, err := auth.MintSub(cfg.AuthSecret, *sub, *ttl)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok)
}
