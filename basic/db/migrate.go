package db

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"secbuy/basic/config"
)

// Migrate applies the *.sql files of fsys (named NNN_what.sql) that service has not applied
// yet, each in its own transaction, in version order. A session-level advisory lock makes
// concurrent start-ups (of any service) take turns, so each version runs once.
func Migrate(ctx context.Context, d *DB, service string, fsys fs.FS) error {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return err
	}
	type migration struct {
		version int
		name    string
	}
	var ms []migration
	for _, f := range files {
		v, err := strconv.Atoi(strings.SplitN(f, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a version number", f)
		}
		ms = append(ms, migration{v, f})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version { // one of the two would never run
			return fmt.Errorf("migrations %s and %s: the same version", ms[i-1].name, ms[i].name)
		}
	}

	// Lock and unlock must use one connection.
	const key = 0x5ecb0e
	return d.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("SELECT pg_advisory_lock(?)", key).Error; err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.Exec("SELECT pg_advisory_unlock(?)", key)
		if err := conn.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			service text NOT NULL, version int NOT NULL, name text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (service, version))`).Error; err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		for _, m := range ms {
			var n int64
			if err := conn.Raw("SELECT count(*) FROM schema_migrations WHERE service = ? AND version = ?", service, m.version).Scan(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			sql, err := fs.ReadFile(fsys, m.name)
			if err != nil {
				return err
			}
			err = conn.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec(string(sql)).Error; err != nil {
					return err
				}
				return tx.Exec("INSERT INTO schema_migrations (service, version, name) VALUES (?, ?, ?)", service, m.version, m.name).Error
			})
			if err != nil {
				return fmt.Errorf("migration %s/%s: %w", service, m.name, err)
			}
		}
		return nil
	})
}

// Setup opens the database of cfg (see Open) and applies service's migrations to it, as
// every service does when it starts.
func Setup(ctx context.Context, cfg config.Config, service string, migrations fs.FS) (*DB, error) {
	d, err := Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, cfg.DBTimeout.Duration)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, d, service, migrations); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}
