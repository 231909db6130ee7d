// Package outbox is the transactional outbox of the services that publish events: an event
// is written to an outbox table in the same transaction as the change it announces, and a
// Relay publishes the table to JetStream in id order, each event with its msg id (so the
// stream drops one published twice), marking an event sent only once it is acknowledged.
package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"secbuy/basic/db"
	"secbuy/basic/metrics"
)

// Event is an outbox row: a message, its JetStream dedup id, and the W3C traceparent of
// the change it announces ("" if that was not traced), sent in the message's headers.
type Event struct {
	ID          int64
	MsgID       string
	Payload     []byte
	Traceparent string
}

// Table is one service's outbox table, with columns id, msg_id (unique), payload (jsonb),
// traceparent (text, ” for none), create_time and sent_time (NULL until sent); the
// service's migrations create it.
type Table struct {
	db    *db.DB
	ident string // the quoted table name
	lock  int64
}

// NewTable returns the outbox table name (a constant of the service, never input) in d.
// lock is the advisory lock key that lets one relay at a time publish it; each table needs
// its own key, since services may share a database.
func NewTable(d *db.DB, name string, lock int64) *Table {
	t := &Table{db: d, ident: pgx.Identifier{name}.Sanitize(), lock: lock}
	metrics.Register(metrics.NewProbe(func(ctx context.Context, emit func(int, float64, ...string)) error {
		n, lag, err := t.backlog(ctx)
		if err == nil {
			emit(0, float64(n), name)
			emit(1, lag, name)
		}
		return err
	},
		metrics.Gauge{Name: "secbuy_outbox_backlog", Help: "Events in the outbox not yet sent to the stream.", Labels: []string{"table"}},
		metrics.Gauge{Name: "secbuy_outbox_lag_seconds", Help: "Age of the oldest event not yet sent (0: none).", Labels: []string{"table"}},
	))
	return t
}

// backlog returns how many events are unsent and the age of the oldest, in seconds.
func (t *Table) backlog(ctx context.Context) (n int64, lag float64, err error) {
	g, cancel := t.db.Ctx(ctx)
	defer cancel()
	// Both from the partial index of unsent rows: the count, and the oldest (the first by
	// id, the relay's order) fetched alone.
	var row struct {
		N   int64
		Lag float64
	}
	err = g.Raw(`SELECT (SELECT count(*) FROM ` + t.ident + ` WHERE sent_time IS NULL) AS n,
		COALESCE((SELECT EXTRACT(EPOCH FROM now() - create_time) FROM ` + t.ident + `
			WHERE sent_time IS NULL ORDER BY id LIMIT 1), 0)::float8 AS lag`).Scan(&row).Error
	return row.N, row.Lag, err
}

// Add writes events (msgIDs[i] with JSON payloads[i] and traceparents[i], in that order;
// traceparents may be nil) in tx, the caller's transaction. A msg id already in the table
// is left as it is.
func (t *Table) Add(tx *gorm.DB, msgIDs, payloads, traceparents []string) error {
	if len(msgIDs) == 0 {
		return nil
	}
	if traceparents == nil {
		traceparents = make([]string, len(msgIDs))
	}
	if len(payloads) != len(msgIDs) || len(traceparents) != len(msgIDs) {
		return fmt.Errorf("outbox %s: %d msg ids, %d payloads, %d traceparents", t.ident, len(msgIDs), len(payloads), len(traceparents))
	}
	return tx.Exec(`INSERT INTO `+t.ident+` (msg_id, payload, traceparent)
		SELECT m, p::jsonb, tp FROM unnest(?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS t(m, p, tp, n) ORDER BY n
		ON CONFLICT (msg_id) DO NOTHING`, db.Array(msgIDs), db.Array(payloads), db.Array(traceparents)).Error
}

// Unsent counts the events not yet sent.
func (t *Table) Unsent(ctx context.Context) (int64, error) {
	n, _, err := t.backlog(ctx)
	return n, err
}

// Relay runs one relay step in one transaction: it takes the relay lock, reads up to limit
// unsent events in id order, hands them to publish, and marks sent exactly the ids that
// publish returns (those the stream acknowledged). If another relay holds the lock it
// returns 0 without calling publish. It returns how many events were marked sent, and
// publish's error after committing what was acknowledged. ctx bounds the whole step,
// publishing included.
func (t *Table) Relay(ctx context.Context, limit int, publish func([]Event) ([]int64, error)) (int, error) {
	var sent int
	var perr error
	err := t.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var locked bool
		if err := tx.Raw(`SELECT pg_try_advisory_xact_lock(?)`, t.lock).Scan(&locked).Error; err != nil {
			return err
		}
		if !locked {
			return nil
		}
		var evs []Event
		if err := tx.Raw(`SELECT id, msg_id, payload, traceparent FROM `+t.ident+` WHERE sent_time IS NULL ORDER BY id LIMIT ?`,
			limit).Scan(&evs).Error; err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		var ids []int64
		ids, perr = publish(evs)
		if len(ids) == 0 {
			return nil
		}
		res := tx.Exec(`UPDATE `+t.ident+` SET sent_time = now() WHERE id = ANY(?) AND sent_time IS NULL`, db.Array(ids))
		sent = int(res.RowsAffected)
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("relay %s: %w", t.ident, err)
	}
	return sent, perr
}

// Purge deletes up to limit events sent more than olderThan ago, oldest first, and returns
// how many it deleted. Instances may purge at the same time: a row goes once.
func (t *Table) Purge(ctx context.Context, olderThan time.Duration, limit int) (int64, error) {
	g, cancel := t.db.Ctx(ctx)
	defer cancel()
	res := g.Exec(`DELETE FROM `+t.ident+` WHERE id IN (SELECT id FROM `+t.ident+`
		WHERE sent_time < now() - make_interval(secs => ?) ORDER BY id LIMIT ?)`, olderThan.Seconds(), limit)
	return res.RowsAffected, res.Error
}
