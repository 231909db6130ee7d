// Package db opens Postgres through gorm with a bounded pool and applies each service's
// embedded, versioned migrations.
package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"secbuy/basic/metrics"
	"secbuy/basic/tracing"
)

// DB is a gorm handle whose calls get a deadline.
type DB struct {
	*gorm.DB
	Timeout time.Duration
}

// Ctx returns the handle bound to ctx with the per-call timeout; call cancel when done.
func (d *DB) Ctx(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	return d.WithContext(ctx), cancel
}

// Ping checks that the database answers (a readiness check).
func (d *DB) Ping(ctx context.Context) error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// Exclusive runs f if no other caller, in any process, holds the advisory lock key; it
// reports whether f ran. The lock is held by a transaction kept open while f runs (f uses
// other connections), so if this process dies the server ends the transaction and the
// lock is free for the next caller: a lease that lapses with its holder.
func (d *DB) Exclusive(ctx context.Context, key int64, f func(context.Context) error) (bool, error) {
	ran := false
	err := d.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var locked bool
		if err := tx.Raw(`SELECT pg_try_advisory_xact_lock(?)`, key).Scan(&locked).Error; err != nil || !locked {
			return err
		}
		ran = true
		return f(ctx)
	})
	return ran, err
}

// Close closes the pool.
func (d *DB) Close() error {
	sqlDB, err := d.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Open creates the database named in dsn if it does not exist, then opens a pool of at
// most maxConns connections. dsn is a postgres:// URL or a key=value string; what it lacks
// comes from the standard PG* variables (PGPASSWORD, PGSSLMODE, PGSSLROOTCERT...) and the
// password file (PGPASSFILE, ~/.pgpass), as with libpq. No error shows the password (pgx
// redacts it from the string it quotes).
func Open(ctx context.Context, dsn string, maxConns int, timeout time.Duration) (*DB, error) {
	conn, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if err := ensureDatabase(ctx, conn); err != nil {
		return nil, err
	}
	if tracing.Enabled() {
		// A span per statement, in the trace of the context it runs under; without the
		// statements' values, which may hold a buyer's data.
		conn.Tracer = otelpgx.NewTracer()
	}
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: stdlib.OpenDB(*conn)}), &gorm.Config{
		Logger:                 logger.Default.LogMode(logger.Silent),
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
	})
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	// The pool's figures (go_sql_in_use_connections, go_sql_max_open_connections…,
	// labelled with the database's name) on /metrics.
	metrics.Register(collectors.NewDBStatsCollector(sqlDB, conn.Database))
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return &DB{DB: g, Timeout: timeout}, nil
}

// ensureDatabase connects to the server's postgres database, with cfg's credentials and
// TLS, and creates cfg's database. Two processes may race here; the loser's duplicate
// error is taken as success.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) error {
	name := cfg.Database
	if name == "" || name == "postgres" {
		return nil
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to postgres at %s (is it running? `make services` starts it): %w", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Array passes a slice to Postgres as one array parameter (for unnest(?) and = ANY(?)):
// gorm would otherwise expand it into a list. pgx encodes the slice itself.
func Array[T any](v []T) driver.Valuer { return array[T](v) }

type array[T any] []T

func (a array[T]) Value() (driver.Value, error) { return []T(a), nil }
