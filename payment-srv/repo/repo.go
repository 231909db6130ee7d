// Package repo is payment-srv's storage: one payment per order, in Postgres.
package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"secbuy/basic/db"
)

// Outcomes that callers branch on.
var (
	ErrNotFound = errors.New("no payment for this order (unknown order, or its payment is not made yet)")
	ErrNotYours = errors.New("not your order")
	ErrExpired  = errors.New("payment expired")
)

// Payment states.
const (
	StateUnpaid  = 0
	StatePaid    = 1
	StateExpired = 2
)

// Payment is a row of payments. Sid is the order id; PaidTime is nil until paid.
type Payment struct {
	ID          int64
	Sid         int64
	CommodityID int64
	Name        string
	State       int16
	CreateTime  time.Time
	UserID      int64
	PaidTime    *time.Time
}

// TableName is gorm's table for Payment.
func (Payment) TableName() string { return "payments" }

// Audit counts one commodity's payments by state; OrderIDSum adds their order ids, so a
// checker can tell the right orders from merely the right number of them.
type Audit struct {
	Payments, Unpaid, Paid, Expired, OrderIDSum int64
}

// Repo is the Postgres store.
type Repo struct {
	db *db.DB
}

// New returns a Repo on d.
func New(d *db.DB) *Repo { return &Repo{db: d} }

// Create inserts the unpaid payment of order p.Sid (CommodityID, Name, UserID). A payment
// for that order that already exists is left as it is, so a redelivered event changes
// nothing; created says whether this call inserted the row.
func (r *Repo) Create(ctx context.Context, p Payment) (created bool, err error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	res := g.Exec(`INSERT INTO payments (sid, commodity_id, name, user_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (sid) DO NOTHING`, p.Sid, p.CommodityID, p.Name, p.UserID)
	if res.Error != nil {
		return false, fmt.Errorf("create payment of order %d: %w", p.Sid, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Pay pays order orderID's payment for userID with one conditional UPDATE, so concurrent
// calls pay it once. A payment that is already paid is returned unchanged (paying again is
// a success that changes nothing); otherwise the row is only read to say why not.
func (r *Repo) Pay(ctx context.Context, orderID, userID int64) (Payment, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	// A second round only happens if the payment was created between the two statements.
	for round := 0; ; round++ {
		var p Payment
		upd := g.Raw(`UPDATE payments SET state = ?, paid_time = now()
			WHERE sid = ? AND user_id = ? AND state = ? RETURNING *`,
			StatePaid, orderID, userID, StateUnpaid).Scan(&p)
		if upd.Error != nil {
			return Payment{}, fmt.Errorf("pay order %d: %w", orderID, upd.Error)
		}
		if upd.RowsAffected == 1 {
			return p, nil
		}
		sel := g.Raw(`SELECT * FROM payments WHERE sid = ?`, orderID).Scan(&p)
		if sel.Error != nil {
			return Payment{}, fmt.Errorf("pay order %d: %w", orderID, sel.Error)
		}
		switch {
		case sel.RowsAffected == 0:
			return Payment{}, ErrNotFound
		case p.UserID != userID:
			return Payment{}, ErrNotYours
		case p.State == StatePaid:
			return p, nil
		case p.State == StateExpired:
			return Payment{}, ErrExpired
		case round > 0:
			return Payment{}, fmt.Errorf("pay order %d: still unpaid after a second update", orderID)
		}
	}
}

// Get returns order orderID's payment if it belongs to userID.
func (r *Repo) Get(ctx context.Context, orderID, userID int64) (Payment, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var p Payment
	res := g.Raw(`SELECT * FROM payments WHERE sid = ?`, orderID).Scan(&p)
	switch {
	case res.Error != nil:
		return Payment{}, fmt.Errorf("get payment of order %d: %w", orderID, res.Error)
	case res.RowsAffected == 0:
		return Payment{}, ErrNotFound
	case p.UserID != userID:
		return Payment{}, ErrNotYours
	}
	return p, nil
}

// Audit counts commodity commodityID's payments; a commodity with none gets zeros.
func (r *Repo) Audit(ctx context.Context, commodityID int64) (Audit, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var a Audit
	err := g.Raw(`SELECT count(*) AS payments,
		count(*) FILTER (WHERE state = ?) AS unpaid,
		count(*) FILTER (WHERE state = ?) AS paid,
		count(*) FILTER (WHERE state = ?) AS expired,
		coalesce(sum(sid), 0)::bigint AS order_id_sum
		FROM payments WHERE commodity_id = ?`, StateUnpaid, StatePaid, StateExpired, commodityID).Scan(&a).Error
	if err != nil {
		return Audit{}, fmt.Errorf("audit payments of commodity %d: %w", commodityID, err)
	}
	return a, nil
}
