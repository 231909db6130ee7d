// Command token prints a development bearer token for a user id, signed with the configured
// secret (SECBUY_AUTH_SECRET, or with SECBUY_DEV=1 the development one; `make token` sets it):
//
//	SECBUY_DEV=1 go run ./basic/cmd/token -user 42
package main

import (
	"flag"
	"fmt"
	"log"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/config"
)

func main() {
	user := flag.Int64("user", 1, "user id (the token's sub)")
	ttl := flag.Duration("ttl", 24*time.Hour, "how long the token is valid")
	flag.Parse()
	cfg, err := config.Load()
	if err != nil {
		log.Fatal(err)
	}
	if *user <= 0 {
		log.Fatal("-user must be a positive integer")
	}
	tok, err := auth.Mint(cfg.AuthSecret, *user, *ttl)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok)
}
