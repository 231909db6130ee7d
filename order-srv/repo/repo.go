// Package repo is order-srv's storage: orders and their outbox of events, in Postgres.
package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"secbuy/basic/buyer"
	"secbuy/basic/db"
	"secbuy/basic/outbox"
	eventpb "secbuy/proto/events"
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

// Order is a row of orders. Sid is the commodity id; Reason says why a failed order failed
// (the name of an outcome.Reason, as stock-srv gave it).
type Order struct {
	ID         int64
	Sid        int64
	Name       string
	CreateTime time.Time
	// Buyer is the token's sub (see package buyer); a numeric user's is its digits.
	Buyer      string `gorm:"column:user_id"`
	RequestID  string
	State      string
	Reason     string
	UpdateTime time.Time
	// Traceparent is the press's trace while it is being served (not stored with the
	// order; its payment event carries it).
	Traceparent string `gorm:"-"`
}

// Event is an outbox row: a payment.payevent message and its dedup id.
type Event = outbox.Event

// Audit is what the invariant checks read about one commodity's orders. Live counts
// created orders and LiveIDSum adds their ids; UsersWithTwoLive counts users holding two or
// more pending or created orders; Unsent counts unsent outbox rows of all commodities;
// Cancelled counts cancelled orders.
type Audit struct {
	Live, Pending, Failed, UsersWithTwoLive, LiveIDSum, Unsent, Cancelled int64
}

// Repo is the Postgres store: the orders, and their outbox of payment.payevent events
// (whose Relay publishes it).
type Repo struct {
	*outbox.Table
	db *db.DB
}

// New returns a Repo on d.
func New(d *db.DB) *Repo {
	// The lock key lets one relay at a time publish the outbox.
	return &Repo{Table: outbox.NewTable(d, "outbox", 0x5ecb0de7), db: d}
}

// Insert records a pending order for requestID and reports whether it is new. If the
// request id is known, its order is returned as it is (ErrRequestReused if it was for
// another commodity or user); if the user already holds a live order for sid, that order
// is returned with ErrAlreadyBought. The unique indexes decide, so concurrent callers
// cannot make two orders for one request id or two live orders for one user and sid.
func (r *Repo) Insert(ctx context.Context, sid int64, buyer, requestID string) (Order, bool, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	// A conflicting live order can end between the insert and the look-ups; then try again.
	for range 3 {
		var o Order
		res := g.Raw(`INSERT INTO orders (sid, user_id, request_id) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING RETURNING *`, sid, buyer, requestID).Scan(&o)
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
			if o.Sid != sid || o.Buyer != buyer {
				return Order{}, false, ErrRequestReused
			}
			return o, false, nil
		}
		res = g.Raw(`SELECT * FROM orders WHERE user_id = ? AND sid = ? AND state IN ('pending', 'created')`,
			buyer, sid).Scan(&o)
		if res.Error != nil {
			return Order{}, false, fmt.Errorf("find live order of user %q for %d: %w", buyer, sid, res.Error)
		}
		if res.RowsAffected == 1 {
			return o, false, ErrAlreadyBought
		}
	}
	return Order{}, false, fmt.Errorf("insert order %s: conflict kept moving", requestID)
}

// NewOrder is one order to record.
type NewOrder struct {
	Sid              int64
	Buyer, RequestID string
}

// InsertBatch records a pending order for each item, with one multi-row insert, and returns
// per item the order and nil, or (as Insert does) the known order of the request id
// (ErrRequestReused if it was for another commodity or user), or the user's live order for
// the commodity with ErrAlreadyBought. The unique indexes decide, as in Insert; items of one
// batch that share a request id share its order.
func (r *Repo) InsertBatch(ctx context.Context, items []NewOrder) ([]Order, []error, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	sids, users, reqs := make([]int64, len(items)), make([]string, len(items)), make([]string, len(items))
	for i, it := range items {
		sids[i], users[i], reqs[i] = it.Sid, it.Buyer, it.RequestID
	}
	var inserted []Order
	err := g.Raw(`INSERT INTO orders (sid, user_id, request_id)
		SELECT sid, user_id, request_id FROM unnest(?::bigint[], ?::text[], ?::text[]) WITH ORDINALITY AS t(sid, user_id, request_id, n)
		ORDER BY n ON CONFLICT DO NOTHING RETURNING *`, db.Array(sids), db.Array(users), db.Array(reqs)).Scan(&inserted).Error
	if err != nil {
		return nil, nil, fmt.Errorf("insert %d orders: %w", len(items), err)
	}
	byReq := make(map[string]Order, len(items))
	for _, o := range inserted {
		byReq[o.RequestID] = o
	}
	var missing []string
	for _, it := range items {
		if _, ok := byReq[it.RequestID]; !ok {
			missing = append(missing, it.RequestID)
		}
	}
	if len(missing) > 0 {
		var known []Order
		if err := g.Raw(`SELECT * FROM orders WHERE request_id = ANY(?)`, db.Array(missing)).Scan(&known).Error; err != nil {
			return nil, nil, fmt.Errorf("find %d orders: %w", len(missing), err)
		}
		for _, o := range known {
			byReq[o.RequestID] = o
		}
	}
	orders, errs := make([]Order, len(items)), make([]error, len(items))
	for i, it := range items {
		o, ok := byReq[it.RequestID]
		switch {
		case ok && (o.Sid != it.Sid || o.Buyer != it.Buyer):
			errs[i] = ErrRequestReused
		case ok:
			orders[i] = o
		default:
			// The user's live order for the commodity won; the single path tells which.
			orders[i], _, errs[i] = r.Insert(ctx, it.Sid, it.Buyer, it.RequestID)
		}
	}
	return orders, errs, nil
}

// FindByRequests returns the orders made for requestIDs, by request id.
func (r *Repo) FindByRequests(ctx context.Context, requestIDs []string) (map[string]Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var os []Order
	if err := g.Raw(`SELECT * FROM orders WHERE request_id = ANY(?)`, db.Array(requestIDs)).Scan(&os).Error; err != nil {
		return nil, fmt.Errorf("find %d orders: %w", len(requestIDs), err)
	}
	m := make(map[string]Order, len(os))
	for _, o := range os {
		m[o.RequestID] = o
	}
	return m, nil
}

// Grant and Refusal are stock-srv's answers for pending orders.
type (
	Grant struct {
		ID          int64
		Name        string
		Traceparent string // the press's, for its payment event
	}
	Refusal struct {
		ID     int64
		Reason string
	}
)

// Finish records stock-srv's answers in one transaction: granted orders become created
// and get their payment event in the outbox, refused ones become failed with the reason.
// Only pending orders change, and only changed orders get an event, so racing callers (a
// buyer's retry and recovery) write one event between them. It returns every order named,
// as it is afterwards.
func (r *Repo) Finish(ctx context.Context, grants []Grant, refusals []Refusal) (map[int64]Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	out := make(map[int64]Order, len(grants)+len(refusals))
	err := db.Transact(g, func(tx *gorm.DB) error {
		clear(out) // a run again (after a lost race) starts from nothing
		if err := r.create(tx, grants, out); err != nil {
			return err
		}
		return fail(tx, refusals, out)
	})
	if err != nil {
		return nil, fmt.Errorf("finish %d orders: %w", len(grants)+len(refusals), err)
	}
	// Orders that were no longer pending are returned as they are.
	var rest []int64
	for _, gr := range grants {
		rest = append(rest, gr.ID)
	}
	for _, rf := range refusals {
		rest = append(rest, rf.ID)
	}
	rest = slices.DeleteFunc(rest, func(id int64) bool { _, ok := out[id]; return ok })
	if len(rest) > 0 {
		var os []Order
		if err := g.Raw(`SELECT * FROM orders WHERE id = ANY(?)`, db.Array(rest)).Scan(&os).Error; err != nil {
			return nil, fmt.Errorf("read %d finished orders: %w", len(rest), err)
		}
		for _, o := range os {
			out[o.ID] = o
		}
	}
	return out, nil
}

// create makes the pending orders among grants created, in tx, with their payment events;
// it adds the orders it changed to out.
func (r *Repo) create(tx *gorm.DB, grants []Grant, out map[int64]Order) error {
	ids, names := make([]int64, len(grants)), make([]string, len(grants))
	traceparents := make(map[int64]string, len(grants))
	for i, gr := range grants {
		ids[i], names[i] = gr.ID, gr.Name
		traceparents[gr.ID] = gr.Traceparent
	}
	created, err := mark(tx, Created, "name", ids, names, out)
	if err != nil || len(created) == 0 {
		return err
	}
	msgIDs, payloads, traces := make([]string, len(created)), make([]string, len(created)), make([]string, len(created))
	for i, o := range created {
		traces[i] = traceparents[o.ID]
		p, err := eventpb.Marshal(&eventpb.PayEvent{
			OrderId: o.ID, CommodityId: o.Sid, UserId: buyer.ID(o.Buyer), Buyer: o.Buyer, Name: o.Name, CreateTime: o.CreateTime.Unix(),
		})
		if err != nil {
			return err
		}
		msgIDs[i], payloads[i] = eventpb.PayMsgID(o.ID), p
	}
	return r.Add(tx, msgIDs, payloads, traces)
}

// fail makes the pending orders among refusals failed, in tx, with the reasons; it adds the
// orders it changed to out.
func fail(tx *gorm.DB, refusals []Refusal, out map[int64]Order) error {
	ids, reasons := make([]int64, len(refusals)), make([]string, len(refusals))
	for i, rf := range refusals {
		ids[i], reasons[i] = rf.ID, rf.Reason
	}
	_, err := mark(tx, Failed, "reason", ids, reasons, out)
	return err
}

// mark moves the pending orders among ids to state, setting column (a constant of this
// file, never input) to the value given for each, in one conditional UPDATE in tx. It
// returns the orders it changed, and adds them to out.
func mark(tx *gorm.DB, state, column string, ids []int64, vals []string, out map[int64]Order) ([]Order, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	col := pgx.Identifier{column}.Sanitize()
	var changed []Order
	if err := tx.Raw(`UPDATE orders o SET state = ?, `+col+` = v.val, update_time = now()
		FROM unnest(?::bigint[], ?::text[]) AS v(id, val)
		WHERE o.id = v.id AND o.state = 'pending' RETURNING o.*`, state, db.Array(ids), db.Array(vals)).Scan(&changed).Error; err != nil {
		return nil, err
	}
	for _, o := range changed {
		out[o.ID] = o
	}
	return changed, nil
}

// MarkCreated is Finish for one granted order; ErrNotFound if there is no such order.
func (r *Repo) MarkCreated(ctx context.Context, id int64, name string) (Order, error) {
	return r.finishOne(ctx, []Grant{{ID: id, Name: name}}, nil, id)
}

// MarkFailed is Finish for one refused order; ErrNotFound if there is no such order.
func (r *Repo) MarkFailed(ctx context.Context, id int64, reason string) (Order, error) {
	return r.finishOne(ctx, nil, []Refusal{{id, reason}}, id)
}

func (r *Repo) finishOne(ctx context.Context, gs []Grant, rs []Refusal, id int64) (Order, error) {
	m, err := r.Finish(ctx, gs, rs)
	if err != nil {
		return Order{}, err
	}
	o, ok := m[id]
	if !ok {
		return Order{}, ErrNotFound
	}
	return o, nil
}

// ExpiredReason is the reason recorded on an order cancelled because its payment expired
// (outcome.Reason_PAYMENT_EXPIRED).
const ExpiredReason = "PAYMENT_EXPIRED"

// Cancel cancels the created orders among ids (created → cancelled, with a conditional
// UPDATE, so concurrent callers cancel each once) with reason, and returns every order
// named that exists, as it is afterwards: cancelled now, cancelled before, or in a state
// that cannot be cancelled. A cancelled order no longer counts as the user's live order,
// so the user may buy the commodity again.
func (r *Repo) Cancel(ctx context.Context, ids []int64, reason string) (map[int64]Order, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var all []Order
	err := g.Exec(`UPDATE orders SET state = 'cancelled', reason = ?, update_time = now()
		WHERE id = ANY(?) AND state = 'created'`, reason, db.Array(ids)).Error
	if err == nil {
		err = g.Raw(`SELECT * FROM orders WHERE id = ANY(?)`, db.Array(ids)).Scan(&all).Error
	}
	if err != nil {
		return nil, fmt.Errorf("cancel %d orders: %w", len(ids), err)
	}
	out := make(map[int64]Order, len(all))
	for _, o := range all {
		out[o.ID] = o
	}
	return out, nil
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

// Holders returns the users who hold a live (pending or created) order for commodity sid,
// or had one cancelled: a resend of the press that made it must get it back, not "sold
// out". There are at most as many as units were sold; failed orders, the crowd, are not.
func (r *Repo) Holders(ctx context.Context, sid int64) ([]string, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var users []string
	if err := g.Raw(`SELECT DISTINCT user_id FROM orders WHERE sid = ? AND state IN ('pending', 'created', 'cancelled')`, sid).Scan(&users).Error; err != nil {
		return nil, fmt.Errorf("holders of %d: %w", sid, err)
	}
	return users, nil
}

// ListByUser returns up to limit of buyer's orders, of every state, newest first (by id),
// after skipping the offset newest, and whether there are more after them.
func (r *Repo) ListByUser(ctx context.Context, buyer string, offset, limit int64) ([]Order, bool, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var out []Order
	// One row past the page says whether there is another page.
	err := g.Raw(`SELECT * FROM orders WHERE user_id = ? ORDER BY id DESC OFFSET ? LIMIT ?`,
		buyer, offset, limit+1).Scan(&out).Error
	if err != nil {
		return nil, false, fmt.Errorf("list orders of user %q: %w", buyer, err)
	}
	if int64(len(out)) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// CountPending counts the orders still pending (their unit not yet asked for, or its
// answer not yet recorded): a scan of the partial index orders_pending.
func (r *Repo) CountPending(ctx context.Context) (int64, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var n int64
	err := g.Raw(`SELECT count(*) FROM orders WHERE state = 'pending'`).Scan(&n).Error
	return n, err
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
		count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
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
