package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"secbuy/proto/outcome"
)

// Class is what a failed database call means to its caller, by SQLSTATE.
type Class int

// The classes of Classify.
const (
	// Unexpected is any other failure (a bug, an unknown error): logged, and the caller
	// sees "busy" as for Transient.
	Unexpected Class = iota
	// BadData is SQLSTATE class 22 (data exception: a value Postgres cannot store, such as
	// text with a NUL, 22021, or a number out of range): the caller's input, a 400.
	BadData
	// Conflict is class 23 (integrity constraint violation) that the code did not already
	// handle as an outcome of its own: a 409.
	Conflict
	// Retry is 40001 (serialization failure) and 40P01 (deadlock detected): the
	// transaction lost a race and was rolled back; Transact runs it again.
	Retry
	// Transient is the database out of reach for now: class 08 (connection), 57P01–57P03
	// (shutting down, crash recovery, starting), 53300 (too many connections), a network
	// error, the pool's acquire timing out or the call's deadline passing: 503 "busy".
	Transient
)

// Classify says which Class err is.
func Classify(err error) Class {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case len(pg.Code) != 5:
			return Unexpected
		case pg.Code[:2] == "22":
			return BadData
		case pg.Code[:2] == "23":
			return Conflict
		case pg.Code == "40001" || pg.Code == "40P01":
			return Retry
		case pg.Code[:2] == "08", pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", pg.Code == "53300":
			return Transient
		}
		return Unexpected
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	switch {
	case err == nil:
		return Unexpected
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.As(err, &connErr), errors.As(err, &netErr),
		pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return Transient
	}
	return Unexpected
}

// Refusal is the refusal a caller sees for a failed database call of its own request:
// INVALID_INPUT (400) for BadData, a 409 for Conflict, and nil for every other class
// (which the RPC edge answers as "storage unavailable", so callers resend). Its detail
// says what kind of value was refused, never the value itself.
func Refusal(err error) *outcome.Error {
	var pg *pgconn.PgError
	switch Classify(err) {
	case BadData:
		errors.As(err, &pg)
		return outcome.Invalid("a value cannot be stored (SQLSTATE " + pg.Code + ")")
	case Conflict:
		errors.As(err, &pg)
		// Not an outcome the service knows (those are mapped before): a bug, or a row
		// changed by hand; the caller is told, and so is whoever reads the log.
		slog.Error("db: a write refused by a constraint", "sqlstate", pg.Code, "constraint", pg.ConstraintName, "table", pg.TableName)
		e := outcome.Refuse(outcome.Reason_REASON_UNSPECIFIED)
		e.Detail = "conflicts with stored data (SQLSTATE " + pg.Code + ")"
		return e
	}
	return nil
}

// retryDelays are the pauses before each new run of a transaction that lost a race.
var retryDelays = []time.Duration{5 * time.Millisecond, 20 * time.Millisecond}

// Transact runs f in a transaction of g. A transaction that lost a serialization race or
// a deadlock (Retry) is run again, up to twice, after a short pause; f must start from
// scratch on each run (what it wrote outside tx is its own to reset).
func Transact(g *gorm.DB, f func(tx *gorm.DB) error) error {
	ctx := g.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	err := g.Transaction(f)
	for _, d := range retryDelays {
		if Classify(err) != Retry {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		err = g.Transaction(f)
	}
	return err
}
