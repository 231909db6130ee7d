package db_test

import (
	"context"
	"errors"
	"testing"
	"testing/fstest"
	"time"

	"gorm.io/gorm"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/proto/outcome"
)

// raise is a statement that fails with SQLSTATE code, as Postgres itself would.
func raise(code string) string {
	return `DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '` + code + `'; END $$`
}

// TestClassify: each SQLSTATE a real server answers falls in its class, and so do the
// pool's and the network's failures.
func TestClassify(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, "errors", fstest.MapFS{})
	ctx := context.Background()
	if err := d.WithContext(ctx).Exec(`CREATE TABLE t (k text PRIMARY KEY, n int CHECK (n > 0))`).Error; err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) error { return d.WithContext(ctx).Exec(sql, args...).Error }
	for _, tc := range []struct {
		name string
		err  error
		want db.Class
	}{
		{"NUL in text (22021)", exec(`INSERT INTO t VALUES (?, 1)`, "a\x00b"), db.BadData},
		{"number out of range (22003)", exec(`SELECT 9223372036854775807::bigint + ?`, 1), db.BadData},
		{"unique violation (23505)", func() error {
			_ = exec(`INSERT INTO t VALUES ('dup', 1)`)
			return exec(`INSERT INTO t VALUES ('dup', 1)`)
		}(), db.Conflict},
		{"check violation (23514)", exec(`INSERT INTO t VALUES ('neg', -1)`), db.Conflict},
		{"serialization failure (40001)", exec(raise("40001")), db.Retry},
		{"deadlock (40P01)", exec(raise("40P01")), db.Retry},
		{"connection failure (08006)", exec(raise("08006")), db.Transient},
		{"admin shutdown (57P01)", exec(raise("57P01")), db.Transient},
		{"crash shutdown (57P02)", exec(raise("57P02")), db.Transient},
		{"cannot connect now (57P03)", exec(raise("57P03")), db.Transient},
		{"too many connections (53300)", exec(raise("53300")), db.Transient},
		{"syntax error (42601)", exec(`SELEC 1`), db.Unexpected},
		{"deadline", func() error {
			c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			return d.WithContext(c).Exec(`SELECT pg_sleep(5)`).Error
		}(), db.Transient},
		{"wrapped", errors.Join(errors.New("create commodity"), exec(`INSERT INTO t VALUES (?, 1)`, "\x00")), db.BadData},
		{"plain error", errors.New("wrong number of answers"), db.Unexpected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("the statement did not fail")
			}
			if got := db.Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

// TestClassifyPoolExhausted: a call that waits for a connection of a full pool until its
// deadline is Transient, and so is a server that does not answer at all.
func TestClassifyPoolExhausted(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	d, err := db.Open(context.Background(), url, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	held := make(chan struct{})
	done := make(chan struct{})
	go func() {
		_ = d.Transaction(func(tx *gorm.DB) error {
			close(held)
			<-done
			return tx.Exec(`SELECT 1`).Error
		})
	}()
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err = d.WithContext(ctx).Exec(`SELECT 1`).Error
	cancel()
	close(done)
	if got := db.Classify(err); err == nil || got != db.Transient {
		t.Errorf("a full pool: Classify(%v) = %d, want Transient", err, got)
	}

	_, err = db.Open(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", 1, time.Second)
	if got := db.Classify(err); err == nil || got != db.Transient {
		t.Errorf("no server: Classify(%v) = %d, want Transient", err, got)
	}
}

// TestRefusal: bad data is a 400 and a constraint a 409, neither echoing the value; other
// classes are no refusal (the edge answers them as busy).
func TestRefusal(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, "refusal", fstest.MapFS{})
	ctx := context.Background()
	nul := d.WithContext(ctx).Exec(`SELECT ?::text`, "secret\x00").Error
	if e := db.Refusal(nul); e.GetCode() != 400 || e.GetReason() != outcome.Reason_INVALID_INPUT || e.GetDetail() != "a value cannot be stored (SQLSTATE 22021)" {
		t.Errorf("NUL: %v", e)
	}
	uniq := d.WithContext(ctx).Exec(raise("23505")).Error
	if e := db.Refusal(uniq); e.GetCode() != 409 || e.GetDetail() != "conflicts with stored data (SQLSTATE 23505)" {
		t.Errorf("unique: %v", e)
	}
	for _, err := range []error{d.WithContext(ctx).Exec(raise("57P01")).Error, d.WithContext(ctx).Exec(raise("40001")).Error, errors.New("x")} {
		if e := db.Refusal(err); e != nil {
			t.Errorf("Refusal(%v) = %v, want nil", err, e)
		}
	}
}

// TestTransactRetries: a transaction that loses a race is run again and its second run
// commits; one that keeps losing stops after three runs; other errors are not retried.
func TestTransactRetries(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, "transact", fstest.MapFS{})
	ctx := context.Background()
	if err := d.WithContext(ctx).Exec(`CREATE TABLE runs (n int)`).Error; err != nil {
		t.Fatal(err)
	}
	runs := 0
	err := db.Transact(d.WithContext(ctx), func(tx *gorm.DB) error {
		runs++
		if err := tx.Exec(`INSERT INTO runs VALUES (?)`, runs).Error; err != nil {
			return err
		}
		if runs == 1 {
			return tx.Exec(raise("40P01")).Error
		}
		return nil
	})
	var rows []int
	d.WithContext(ctx).Raw(`SELECT n FROM runs`).Scan(&rows)
	if err != nil || runs != 2 || len(rows) != 1 || rows[0] != 2 {
		t.Errorf("deadlock once: err %v, runs %d, rows %v; want nil, 2, [2]", err, runs, rows)
	}

	for _, tc := range []struct {
		code string
		want int
	}{{"40001", 3}, {"22021", 1}, {"57P01", 1}} {
		runs := 0
		err := db.Transact(d.WithContext(ctx), func(tx *gorm.DB) error {
			runs++
			return tx.Exec(raise(tc.code)).Error
		})
		if err == nil || runs != tc.want {
			t.Errorf("%s every time: err %v, runs %d; want an error after %d", tc.code, err, runs, tc.want)
		}
	}
}
