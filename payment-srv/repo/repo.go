// Package repo is payment-srv's storage: one payment per order, in Postgres.
package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"secbuy/basic/buyer"
	"secbuy/basic/db"
	"secbuy/basic/outbox"
	eventpb "secbuy/proto/events"
)

// Payment states.
const (
	StateUnpaid  = 0
	StatePaid    = 1
	StateExpired = 2
)

// Payment is a row of payments. Sid is the order id; PaidTime is nil until paid.
// OrderTime is when the order was made, from its event (zero: not known), which the time to
// pay runs from; it is written by CreateBatch and not read back.
type Payment struct {
	ID          int64
	Sid         int64
	CommodityID int64
	Name        string
	State       int16
	CreateTime  time.Time
	// Buyer is the order's buyer, the token's sub (see package buyer).
	Buyer     string `gorm:"column:user_id"`
	PaidTime  *time.Time
	OrderTime time.Time `gorm:"-"`
}

// TableName is gorm's table for Payment.
func (Payment) TableName() string { return "payments" }

// Outcomes that callers branch on.
var (
	ErrNotFound = errors.New("no payment for this order (unknown order, or its payment is not made yet)")
	ErrNotYours = errors.New("not your order")
	ErrExpired  = errors.New("payment expired")
)

// Repo is the Postgres store: the payments, and the outbox of their payment.expired
// events (whose Relay publishes it).
type Repo struct {
	*outbox.Table
	db *db.DB
}

// New returns a Repo on d.
func New(d *db.DB) *Repo {
	// The lock key lets one relay at a time publish payment_outbox.
	return &Repo{Table: outbox.NewTable(d, "payment_outbox", 0x5ecb0de8), db: d}
}

// Create inserts the unpaid payment of order p.Sid (CommodityID, Name, Buyer, OrderTime). A payment
// for that order that already exists is left as it is, so a redelivered event changes
// nothing; created says whether this call inserted the row.
func (r *Repo) Create(ctx context.Context, p Payment) (created bool, err error) {
	n, err := r.CreateBatch(ctx, []Payment{p})
	return n == 1, err
}

// CreateBatch inserts the unpaid payments of ps with one INSERT, leaving any
// payment that already exists as it is (see Create); an order given twice gets the first
// one. It returns how many rows it inserted. Rows go in order of sid, so concurrent batches
// that share orders wait for one another instead of deadlocking. A payment's order_time is
// its OrderTime (to the second), or NULL if that is zero; never later than now, so that a
// producer's clock ahead of this database's cannot lengthen the time to pay.
func (r *Repo) CreateBatch(ctx context.Context, ps []Payment) (created int64, err error) {
	if len(ps) == 0 {
		return 0, nil
	}
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b Payment) int { return cmp.Compare(a.Sid, b.Sid) })
	ps = slices.CompactFunc(ps, func(a, b Payment) bool { return a.Sid == b.Sid })
	sids := make([]int64, len(ps))
	commodities := make([]int64, len(ps))
	names := make([]string, len(ps))
	users := make([]string, len(ps))
	ordered := make([]int64, len(ps)) // unix seconds; 0: not known
	for i, p := range ps {
		sids[i], commodities[i], names[i], users[i] = p.Sid, p.CommodityID, p.Name, p.Buyer
		if !p.OrderTime.IsZero() {
			ordered[i] = p.OrderTime.Unix()
		}
	}
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	res := g.Exec(`INSERT INTO payments (sid, commodity_id, name, user_id, order_time)
		SELECT v.sid, v.commodity_id, v.name, v.user_id,
			CASE WHEN v.ordered > 0 THEN least(to_timestamp(v.ordered), now()) END
		FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::bigint[]) AS v (sid, commodity_id, name, user_id, ordered)
		ORDER BY sid ON CONFLICT (sid) DO NOTHING`, db.Array(sids), db.Array(commodities), db.Array(names), db.Array(users), db.Array(ordered))
	if res.Error != nil {
		return 0, fmt.Errorf("create %d payments (orders %d..%d): %w", len(ps), ps[0].Sid, ps[len(ps)-1].Sid, res.Error)
	}
	return res.RowsAffected, nil
}

// Pay pays order orderID's payment for buyer with one conditional UPDATE, so concurrent
// calls pay it once. A payment that is already paid is returned unchanged (paying again is
// a success that changes nothing); otherwise the row is only read to say why not.
func (r *Repo) Pay(ctx context.Context, orderID int64, buyer string) (Payment, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	// A second round only happens if the payment was created between the two statements.
	for round := 0; ; round++ {
		var p Payment
		upd := g.Raw(`UPDATE payments SET state = ?, paid_time = now()
			WHERE sid = ? AND user_id = ? AND state = ? RETURNING *`,
			StatePaid, orderID, buyer, StateUnpaid).Scan(&p)
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
		case p.Buyer != buyer:
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

// Get returns order orderID's payment if it belongs to buyer.
func (r *Repo) Get(ctx context.Context, orderID int64, buyer string) (Payment, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var p Payment
	res := g.Raw(`SELECT * FROM payments WHERE sid = ?`, orderID).Scan(&p)
	switch {
	case res.Error != nil:
		return Payment{}, fmt.Errorf("get payment of order %d: %w", orderID, res.Error)
	case res.RowsAffected == 0:
		return Payment{}, ErrNotFound
	case p.Buyer != buyer:
		return Payment{}, ErrNotYours
	}
	return p, nil
}

// CountUnpaid counts the payments waiting to be paid (not paid, not expired). The state is
// written out (0, StateUnpaid), not a parameter, so that every plan can use the partial
// index payments_unpaid.
func (r *Repo) CountUnpaid(ctx context.Context) (int64, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var n int64
	err := g.Raw(`SELECT count(*) FROM payments WHERE state = 0`).Scan(&n).Error
	return n, err
}

// Audit counts one commodity's payments by state; OrderIDSum adds their order ids, so a
// checker can tell the right orders from merely the right number of them. Live counts the
// payments not expired (those of created orders) and LiveOrderIDSum adds their order ids.
type Audit struct {
	Payments, Unpaid, Paid, Expired, OrderIDSum, Live, LiveOrderIDSum int64
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
		coalesce(sum(sid), 0)::bigint AS order_id_sum,
		count(*) FILTER (WHERE state <> ?) AS live,
		coalesce(sum(sid) FILTER (WHERE state <> ?), 0)::bigint AS live_order_id_sum
		FROM payments WHERE commodity_id = ?`, StateUnpaid, StatePaid, StateExpired, StateExpired, StateExpired, commodityID).Scan(&a).Error
	if err != nil {
		return Audit{}, fmt.Errorf("audit payments of commodity %d: %w", commodityID, err)
	}
	return a, nil
}

// Expire turns up to limit unpaid payments whose order was made more than olderThan ago (its
// order_time; without one, the payment's create_time) into expired,
// with one conditional UPDATE (state = 0), and in the same transaction writes a
// payment.expired event for each of them to the outbox. It returns the payments it expired.
// A payment that Pay is paying at the same moment is either paid or expired, never both:
// both are conditional updates of the unpaid row, and the one that waits for the other's
// row lock then finds it no longer unpaid. Rows locked by another payment-srv's expiry are
// skipped, so instances share the work without waiting for each other.
func (r *Repo) Expire(ctx context.Context, olderThan time.Duration, limit int) ([]Payment, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var expired []Payment
	err := db.Transact(g, func(tx *gorm.DB) error {
		if err := tx.Raw(`UPDATE payments SET state = ? WHERE state = ? AND id IN (
				SELECT id FROM payments WHERE state = ? AND coalesce(order_time, create_time) < now() - make_interval(secs => ?)
				ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING *`, StateExpired, StateUnpaid, StateUnpaid, olderThan.Seconds(), limit).Scan(&expired).Error; err != nil {
			return err
		}
		msgIDs, payloads := make([]string, len(expired)), make([]string, len(expired))
		now := time.Now().Unix()
		for i, p := range expired {
			b, err := eventpb.Marshal(&eventpb.ExpiredEvent{
				OrderId: p.Sid, CommodityId: p.CommodityID, UserId: buyer.ID(p.Buyer), Buyer: p.Buyer, PaymentId: p.ID, ExpireTime: now,
			})
			if err != nil {
				return err
			}
			msgIDs[i], payloads[i] = eventpb.ExpiredMsgID(p.Sid), b
		}
		return r.Add(tx, msgIDs, payloads, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("expire payments: %w", err)
	}
	return expired, nil
}
