// Package dbtest gives a test its own fresh Postgres database, dropped when the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"secbuy/basic/db"
)

// ServerURL is the Postgres server the tests use: SECBUY_TEST_PG, or the local default.
func ServerURL() string {
	if u := os.Getenv("SECBUY_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432"
}

// NewURL creates an empty database for t and returns its URL; the database is dropped at
// the end of the test. It fails the test, saying how to start Postgres, if none answers.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL()+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatalf("postgres at %s is needed (run `make services` to start it): %v", ServerURL(), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "secbuy_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	_ = admin.Close(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, ServerURL()+"/postgres?sslmode=disable")
		if err != nil {
			return
		}
		defer admin.Close(ctx)
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return ServerURL() + "/" + name + "?sslmode=disable"
}

// New opens a fresh database for t with the given migrations applied.
func New(t testing.TB, service string, migrations fs.FS) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, NewURL(t), 32, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := db.Migrate(ctx, d, service, migrations); err != nil {
		t.Fatal(err)
	}
	return d
}

// Before returns the migrations of fsys that run before the one whose name ends in suffix
// (by version), so that a test can make rows as an older schema held them, then migrate.
func Before(t testing.TB, fsys fs.FS, suffix string) fs.FS {
	t.Helper()
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	version := func(name string) int {
		v, _ := strconv.Atoi(name[:strings.IndexFunc(name, func(c rune) bool { return c < '0' || c > '9' })])
		return v
	}
	limit := -1
	for _, n := range names {
		if strings.HasSuffix(n, suffix) {
			limit = version(n)
		}
	}
	if limit < 0 {
		t.Fatalf("no migration named *%s", suffix)
	}
	out := fstest.MapFS{}
	for _, n := range names {
		if version(n) < limit {
			b, err := fs.ReadFile(fsys, n)
			if err != nil {
				t.Fatal(err)
			}
			out[n] = &fstest.MapFile{Data: b}
		}
	}
	return out
}
