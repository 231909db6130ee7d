package db_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
)

// TestMigrateConcurrently: processes starting at once apply each version exactly once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	fsys := fstest.MapFS{
		"001_a.sql": {Data: []byte("CREATE TABLE a (id int); INSERT INTO a VALUES (1);")},
		"002_b.sql": {Data: []byte("ALTER TABLE a ADD COLUMN b int;")},
	}
	const n = 8
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := db.Open(context.Background(), url, 2, 10*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			errs <- db.Migrate(context.Background(), d, "one", fsys)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	d, err := db.Open(context.Background(), url, 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var applied, rows int64
	d.Raw("SELECT count(*) FROM schema_migrations").Scan(&applied)
	d.Raw("SELECT count(*) FROM a").Scan(&rows)
	if applied != 2 || rows != 1 {
		t.Errorf("schema_migrations rows = %d, table a rows = %d; want 2 and 1", applied, rows)
	}
}

// TestMigrateSameVersion: two files of one version (two branches' migrations merged) stop
// start-up instead of one of them never running.
func TestMigrateSameVersion(t *testing.T) {
	t.Parallel()
	d, err := db.Open(context.Background(), dbtest.NewURL(t), 1, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fsys := fstest.MapFS{
		"004_a.sql": {Data: []byte("CREATE TABLE a (id int);")},
		"004_b.sql": {Data: []byte("CREATE TABLE b (id int);")},
	}
	err = db.Migrate(context.Background(), d, "one", fsys)
	if err == nil || !strings.Contains(err.Error(), "004_a.sql and 004_b.sql: the same version") {
		t.Fatalf("Migrate = %v, want the two files named", err)
	}
	var tables int64
	d.Raw("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('a', 'b')").Scan(&tables)
	if tables != 0 {
		t.Errorf("%d of the tables were created, want none", tables)
	}
}
