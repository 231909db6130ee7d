// Package repo is order-srv's storage: orders and their outbox of events, in Postgres.
package repo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"gorm.io/gorm"

	"secbuy/basic/db"
	paypb "secbuy/payment-srv/proto/payment"
)

// Outcomes that callers branch on.
var (
	ErrNotFound = errors.New("order not found")
	// ErrAlreadyBought means the user already holds a live order for the commodity.
	ErrAlreadyBought = errors.New("already bought")
	// ErrRequestReused means a request id already used for another commodity or user.
	ErrRequestReused = errors.New("request id already used for another purchase")
)

// Order states.
const (
	Pending   = "pending"
	Created   = "created"
	Failed    = "failed"
	Cancelled = "cancelled"
)

// Order is a row of orders. Sid is the commodity id; Reason says why a failed order failed.
type Order struct {
	ID         int64
	Sid        int64
	Name       string
	CreateTime time.Time
	UserID     int64
	RequestID  string
	State      string
	Reason     string
	UpdateTime time.Time
}

// Event is an outbox row: a payment.payevent message and its dedup id.
type Event struct {
	ID      int64
	MsgID   string
	Payload []byte
}

// Audit is what the invariant checks read about one commodity's orders. Live counts
// created orders and LiveIDSum adds their ids; UsersWithTwoLive counts users holding two or
// more pending or created orders; Unsent counts unsent outbox rows of all commodities.
type Audit struct {
	Live, Pending, Failed, UsersWithTwoLive, LiveIDSum, Unsent int64
}

// Repo is the Postgres store.
type Repo struct {
	db *db.DB
}

// New returns a Repo on d.
func New(d *db.DB) *Repo { return &Repo{db: d} }

// MsgID is the JetStream dedup id of order id's payment event.
func MsgID(orderID int64) string { return "order-" + strconv.FormatInt(orderID, 10) }

// Insert records a pending order for requestID and reports whether it is new. If the
// request id is known, its order is returned as it is (ErrRequestReused if it was for
// another commodity or user); if the user already holds a live order for sid, that order
// is returned with ErrAlreadyBought. The unique indexes decide, so concurrent callers
// cannot make two orders for one request id or two live orders for one user and sid.
func (r *Repo) Insert(ctx context.Context, sid, userID int64, requestID string) (Order, bool, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	// A conflicting live order can end between the insert and the look-ups; then try again.
	for range 3 {
		var o Order
		res := g.Raw(`INSERT INTO orders (sid, user_id, request_id) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING RETURNING *`, sid, userID, requestID).Scan(&o)
		if res.Error != nil {
			return Order{}, false, fmt.Errorf("insert order %s: %w", requestID, res.Error)
		}
		if res.RowsAffected == 1 {
			return o, true, nil
		}
		res = g.Raw(`SELECT * FROM orders WHERE request_id = ?`, requestID).Scan(&o)
		if res.Error != nil {
			return Order{}, false, fmt.Errorf("find order %s: %w", requestID, res.Error)
		}
		if res.RowsAffected == 1 {
			if o.Sid != sid || o.UserID != userID {
				return Order{}, false, ErrRequestReused
			}
			return o, false, nil
		}
		res = g.Raw(`SELECT * FROM orders WHERE user_id = ? AND sid = ? AND state IN ('pending', 'created')`,
			userID, sid).Scan(&o)
		if res.Error != nil {
			return Order{}, false, fmt.Errorf("find live order of user %d for %d: %w", userID, sid, res.Error)
		}
		if res.RowsAffected == 1 {
			return o, false, ErrAlreadyBought
		}
	}
	return Order{}, false, fmt.Errorf("insert order %s: conflict kept moving", requestID)
}

// FindByRequest returns the order made for requestID, or ErrNotFound.
func (r *Repo) FindByRequest(ctx context.Context, requestID string) (Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var o Order
	res := g.Raw(`SELECT * FROM orders WHERE request_id = ?`, requestID).Scan(&o)
	if res.Error != nil {
		return Order{}, fmt.Errorf("find order %s: %w", requestID, res.Error)
	}
	if res.RowsAffected == 0 {
		return Order{}, ErrNotFound
	}
	return o, nil
}

// MarkCreated turns pending order id into created with the commodity's name and, in the
// same transaction and only if it changed the order, writes its payment event to the
// outbox. It returns the order as it is afterwards: an order that was no longer pending is
// returned unchanged, so racing callers write one event between them.
func (r *Repo) MarkCreated(ctx context.Context, id int64, name string) (Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var o Order
	err := g.Transaction(func(tx *gorm.DB) error {
		res := tx.Raw(`UPDATE orders SET state = 'created', name = ?, update_time = now()
			WHERE id = ? AND state = 'pending' RETURNING *`, name, id).Scan(&o)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return take(tx, id, &o)
		}
		payload, err := protojson.Marshal(&paypb.PayEvent{
			OrderId: o.ID, CommodityId: o.Sid, UserId: o.UserID, Name: o.Name, CreateTime: o.CreateTime.Unix(),
		})
		if err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO outbox (msg_id, payload) VALUES (?, ?) ON CONFLICT (msg_id) DO NOTHING`,
			MsgID(o.ID), string(payload)).Error
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Order{}, fmt.Errorf("mark order %d created: %w", id, err)
	}
	return o, err
}

// MarkFailed turns pending order id into failed with reason and returns the order as it is
// afterwards; an order that was no longer pending is returned unchanged.
func (r *Repo) MarkFailed(ctx context.Context, id int64, reason string) (Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var o Order
	res := g.Raw(`UPDATE orders SET state = 'failed', reason = ?, update_time = now()
		WHERE id = ? AND state = 'pending' RETURNING *`, reason, id).Scan(&o)
	err := res.Error
	if err == nil && res.RowsAffected == 0 {
		err = take(g, id, &o)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Order{}, fmt.Errorf("mark order %d failed: %w", id, err)
	}
	return o, err
}

// Get returns order id, or ErrNotFound.
func (r *Repo) Get(ctx context.Context, id int64) (Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var o Order
	err := take(g, id, &o)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Order{}, fmt.Errorf("get order %d: %w", id, err)
	}
	return o, err
}

func take(g *gorm.DB, id int64, o *Order) error {
	res := g.Raw(`SELECT * FROM orders WHERE id = ?`, id).Scan(o)
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return res.Error
}

// Pending returns up to limit pending orders created more than olderThan ago with ids
// above afterID, by id, so that recovery can walk them all once.
func (r *Repo) Pending(ctx context.Context, olderThan time.Duration, afterID int64, limit int) ([]Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var out []Order
	err := g.Raw(`SELECT * FROM orders WHERE state = 'pending' AND id > ?
		AND create_time < now() - make_interval(secs => ?) ORDER BY id LIMIT ?`,
		afterID, olderThan.Seconds(), limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list pending orders: %w", err)
	}
	return out, nil
}

// Audit counts commodity sid's orders.
func (r *Repo) Audit(ctx context.Context, sid int64) (Audit, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var a Audit
	err := g.Raw(`SELECT
		count(*) FILTER (WHERE state = 'created') AS live,
		count(*) FILTER (WHERE state = 'pending') AS pending,
		count(*) FILTER (WHERE state = 'failed') AS failed,
		coalesce(sum(id) FILTER (WHERE state = 'created'), 0) AS live_id_sum,
		(SELECT count(*) FROM (SELECT 1 FROM orders WHERE sid = ? AND state IN ('pending', 'created')
			GROUP BY user_id HAVING count(*) > 1) t) AS users_with_two_live,
		(SELECT count(*) FROM outbox WHERE sent_time IS NULL) AS unsent
		FROM orders WHERE sid = ?`, sid, sid).Scan(&a).Error
	if err != nil {
		return Audit{}, fmt.Errorf("audit orders of %d: %w", sid, err)
	}
	return a, nil
}

// relayLock is the advisory lock key that lets one relay at a time publish the outbox.
const relayLock = 0x5ecb0de7

// Relay runs one relay step in one transaction: it takes the relay lock, reads up to limit
// unsent events in id order, hands them to publish, and marks sent exactly the ids that
// publish returns (those the stream acknowledged). If another relay holds the lock it
// returns 0 without calling publish. It returns how many events were marked sent, and
// publish's error after committing what was acknowledged. ctx bounds the whole step,
// publishing included.
func (r *Repo) Relay(ctx context.Context, limit int, publish func([]Event) ([]int64, error)) (int, error) {
	var sent int
	var perr error
	err := r.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var locked bool
		if err := tx.Raw(`SELECT pg_try_advisory_xact_lock(?)`, relayLock).Scan(&locked).Error; err != nil {
			return err
		}
		if !locked {
			return nil
		}
		var evs []Event
		if err := tx.Raw(`SELECT id, msg_id, payload FROM outbox WHERE sent_time IS NULL ORDER BY id LIMIT ?`,
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
		res := tx.Exec(`UPDATE outbox SET sent_time = now() WHERE id IN ? AND sent_time IS NULL`, ids)
		sent = int(res.RowsAffected)
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	return sent, perr
}
