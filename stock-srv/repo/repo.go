// Package repo is stock-srv's storage: commodities and the record of every sale, in Postgres.
package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"secbuy/basic/db"
)

// Outcomes that callers branch on.
var (
	ErrNotFound   = errors.New("commodity not found")
	ErrSoldOut    = errors.New("sold out")
	ErrNotStarted = errors.New("not started")
	ErrEnded      = errors.New("ended")
	// ErrRequestReused means a request id already used for another commodity or user.
	ErrRequestReused = errors.New("request id already used for another purchase")
	// ErrNoSale means Release was given a request id that Sell never recorded.
	ErrNoSale = errors.New("no sale for this request id")
	// ErrNotGranted means Release was given a request id whose sale was refused.
	ErrNotGranted = errors.New("sale was not granted: nothing to release")
)

// Commodity is a row of stock. A nil Start or End leaves that side of the window open.
// Held units were given back and are not on sale again before HeldUntil.
type Commodity struct {
	ID         int64
	Name       string
	Count      int64
	Sale       int64
	CreateTime time.Time
	Version    int64
	StartTime  *time.Time
	EndTime    *time.Time
	Held       int64
	HeldUntil  *time.Time
	// Buckets is how many rows the count is split over: 1, the stock row itself, or K > 1
	// stock_bucket rows (see migration 004). Read from stock_now, Sale and Held add up the
	// buckets'.
	Buckets int
	// TicketRequired: order-web sells it only to a buyer with a ticket (migration 007).
	TicketRequired bool
}

// MaxBuckets is the most rows one commodity's count may be split over.
const MaxBuckets = 64

// Left is how many units can be bought at now.
func (c Commodity) Left(now time.Time) int64 {
	held := int64(0)
	if c.HeldUntil != nil && c.HeldUntil.After(now) {
		held = c.Held
	}
	return max(0, c.Count-c.Sale-held)
}

// TableName is gorm's table for Commodity.
func (Commodity) TableName() string { return "stock" }

// Audit is what the invariant checks read: Granted counts live (granted, not released)
// sale records, Released the granted ones given back.
type Audit struct {
	Count, Sale, Granted, Released int64
}

// Repo is the Postgres store.
type Repo struct {
	db *db.DB
	// returnDelay is how long a unit given back waits before it is on sale again.
	returnDelay time.Duration
}

// ReturnDelay is how long a unit given back by Release waits before it is on sale again.
const ReturnDelay = time.Second

// New returns a Repo on d.
func New(d *db.DB) *Repo { return &Repo{db: d, returnDelay: ReturnDelay} }

// activeHeld is, in SQL, the units of a stock row s that are held now, by the
// transaction's clock (now()).
const activeHeld = `(CASE WHEN s.held_until > now() THEN s.held ELSE 0 END)`

// heldAtClock is activeHeld by the wall clock (clock_timestamp()), as a release, once it
// has the row's lock, judges it.
const heldAtClock = `(CASE WHEN s.held_until > clock_timestamp() THEN s.held ELSE 0 END)`

// openWindow is, in SQL, "the sale window of the stock row a is open now".
func openWindow(a string) string {
	return "(" + a + ".start_time IS NULL OR " + a + ".start_time <= now()) AND (" + a + ".end_time IS NULL OR " + a + ".end_time > now())"
}

// Create inserts c (Name, Count, StartTime, EndTime, Buckets, TicketRequired) and returns the stored row.
// A commodity of K > 1 buckets (never more than its count) gets K bucket rows that share
// its count as evenly as they can.
func (r *Repo) Create(ctx context.Context, c Commodity) (Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	k := max(1, min(c.Buckets, MaxBuckets, int(min(c.Count, MaxBuckets)))) // never more buckets than units
	row := Commodity{Name: c.Name, Count: c.Count, StartTime: c.StartTime, EndTime: c.EndTime, Buckets: k,
		TicketRequired: c.TicketRequired}
	err := db.Transact(g, func(tx *gorm.DB) error {
		if err := tx.Omit("ID", "Sale", "CreateTime", "Version").Create(&row).Error; err != nil || k == 1 {
			return err
		}
		return tx.Exec(`INSERT INTO stock_bucket (sid, n, count)
			SELECT ?, n, ?::bigint / ? + CASE WHEN n < ?::bigint % ? THEN 1 ELSE 0 END FROM generate_series(0, ? - 1) n`,
			row.ID, row.Count, k, row.Count, k, k).Error
	})
	if err != nil {
		return Commodity{}, fmt.Errorf("create commodity: %w", err)
	}
	return r.Get(ctx, row.ID)
}

// Get returns commodity id, or ErrNotFound.
func (r *Repo) Get(ctx context.Context, id int64) (Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var c Commodity
	err := g.Table("stock_now").Where("id = ?", id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Commodity{}, ErrNotFound
	}
	if err != nil {
		return Commodity{}, fmt.Errorf("get commodity %d: %w", id, err)
	}
	return c, nil
}

// ListQuery is a page of commodities by id: Limit of them after skipping Offset, oldest
// first unless Newest; Current keeps only those whose sale has not ended.
type ListQuery struct {
	Offset, Limit   int
	Newest, Current bool
}

// List returns the page q of commodities.
func (r *Repo) List(ctx context.Context, q ListQuery) ([]Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	g = g.Table("stock_now")
	if q.Current {
		g = g.Where("end_time IS NULL OR end_time > now()")
	}
	order := "id"
	if q.Newest {
		order = "id DESC"
	}
	var cs []Commodity
	if err := g.Order(order).Offset(q.Offset).Limit(q.Limit).Find(&cs).Error; err != nil {
		return nil, fmt.Errorf("list commodities: %w", err)
	}
	return cs, nil
}

// Audit returns count, sale and the number of live granted sales of commodity id.
func (r *Repo) Audit(ctx context.Context, id int64) (Audit, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var a Audit
	res := g.Raw(`SELECT count, sale,
		(SELECT count(*) FROM stock_sale WHERE sid = s.id AND granted AND NOT released) AS granted,
		(SELECT count(*) FROM stock_sale WHERE sid = s.id AND granted AND released) AS released
		FROM stock_now s WHERE id = ?`, id).Scan(&a)
	if res.Error != nil {
		return Audit{}, fmt.Errorf("audit commodity %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return Audit{}, ErrNotFound
	}
	return a, nil
}

// SoldOut says whether commodity id is sold out now (no unit on sale, counting held units
// as not on sale) and, if so, for how long at least it stays so, counted from the start of
// its own statement (so from after the caller asked): every unit given back from then on is
// held for the return delay (ReleaseBatch), the units held now until their hold ends, and
// no longer than the sale window. A commodity whose window is closed is not "sold out" here
// (it is not started or ended). FOR SHARE waits for a release that has changed the row but
// not yet committed: a plain read would not see its units, and promise too long.
func (r *Repo) SoldOut(ctx context.Context, id int64) (soldOut bool, validFor time.Duration, err error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var buckets int
	res := g.Raw(`SELECT buckets FROM stock WHERE id = ?`, id).Scan(&buckets)
	switch {
	case res.Error != nil:
		return false, 0, fmt.Errorf("sold out %d: %w", id, res.Error)
	case res.RowsAffected == 0:
		return false, 0, ErrNotFound
	}
	var row struct {
		SoldOut  bool
		ValidFor float64 // seconds
	}
	q := `SELECT s.sale + ` + activeHeld + ` >= s.count
			AND ` + openWindow("s") + ` AS sold_out,
		LEAST(CASE WHEN ` + activeHeld + ` > 0 THEN extract(epoch FROM s.held_until - now()) END, ?,
			extract(epoch FROM s.end_time - now())) AS valid_for
		FROM stock s WHERE id = ? FOR SHARE`
	args := []any{r.returnDelay.Seconds(), id}
	if buckets > 1 {
		// Every bucket is sold out, and the soonest hold to end bounds the promise. The
		// buckets are read in order (FOR SHARE), as sellers lock them.
		q = `WITH b AS (
				SELECT s.sale, s.count, ` + activeHeld + ` AS held, s.held_until FROM stock_bucket s
				WHERE s.sid = ? ORDER BY s.n FOR SHARE)
			SELECT (SELECT bool_and(sale + held >= count) FROM b)
				AND ` + openWindow("s") + ` AS sold_out,
			LEAST((SELECT min(extract(epoch FROM held_until - now())) FROM b WHERE held > 0), ?,
				extract(epoch FROM s.end_time - now())) AS valid_for
			FROM stock s WHERE s.id = ?`
		args = []any{id, r.returnDelay.Seconds(), id}
	}
	res = g.Raw(q, args...).Scan(&row)
	switch {
	case res.Error != nil:
		return false, 0, fmt.Errorf("sold out %d: %w", id, res.Error)
	case res.RowsAffected == 0:
		return false, 0, ErrNotFound
	case !row.SoldOut:
		return false, 0, nil
	}
	return true, time.Duration(row.ValidFor * float64(time.Second)), nil
}

// SellItem asks for one unit of commodity ID for RequestID, on behalf of Buyer.
type SellItem struct {
	ID        int64
	RequestID string
	Buyer     string
}

// SellResult answers one SellItem. Err is nil when the unit is granted, else ErrNotFound,
// ErrSoldOut, ErrNotStarted, ErrEnded or ErrRequestReused. Commodity is the row as the batch
// left it (zero for an unknown commodity).
type SellResult struct {
	Commodity Commodity
	Err       error
}

// Sell takes one unit of commodity id for requestID: a batch of one (see SellBatch). A
// request id that was answered before gets the same answer and takes nothing.
func (r *Repo) Sell(ctx context.Context, id int64, requestID, buyer string) (Commodity, error) {
	res, err := r.SellBatch(ctx, []SellItem{{ID: id, RequestID: requestID, Buyer: buyer}})
	if err != nil {
		return Commodity{}, err
	}
	return res[0].Commodity, res[0].Err
}

type saleRecord struct {
	RequestID string
	Sid       int64
	Buyer     string `gorm:"column:user_id"`
	Granted   bool
	Reason    string
}

// takenRow is a commodity row with what one batch took from it, or why it took nothing.
type takenRow struct {
	Commodity
	Taken  int64
	Reason string
}

// takeSQL takes up to ? units of commodity ? while it has some on sale (units given back
// and still held are not) and its window is open, in one statement, and returns the row
// after it with the number taken; a hold that is over is cleared. The CTE locks the row
// only if there is something to take, and reads it as it is once the lock is held (under
// READ COMMITTED a locking read waits for a concurrent seller, then rechecks its condition
// on that seller's commit), so sale - cur.sale is exactly what this statement took. FOR NO
// KEY UPDATE, not FOR UPDATE: the latter conflicts with the key-share lock that inserting a
// stock_sale row takes on its commodity, and concurrent batches would deadlock.
var takeSQL = `WITH cur AS (
	SELECT id, sale, ` + activeHeld + ` AS held FROM stock s WHERE id = ? AND sale + ` + activeHeld + ` < count
		AND ` + openWindow("s") + `
	FOR NO KEY UPDATE
)
UPDATE stock s SET sale = s.sale + LEAST(?, s.count - s.sale - cur.held), held = cur.held, version = s.version + 1
FROM cur WHERE s.id = cur.id
RETURNING s.*, s.sale - cur.sale AS taken`

// refusedSQL reads the row of a commodity that had nothing to give, and why (now() is the
// transaction's time, as in takeSQL).
const refusedSQL = `SELECT *, CASE WHEN start_time > now() THEN 'NOT_STARTED'
	WHEN end_time <= now() THEN 'ENDED' ELSE 'SOLD_OUT' END AS reason FROM stock_now s WHERE id = ?`

// takeBucketSQL is takeSQL for bucket ? of commodity ? (the window is the commodity's):
// it takes up to ? units from that one row and returns how many it took. With NOWAIT it
// fails at once (55P03) rather than wait for another seller's lock on the row.
var takeBucketSQL = `WITH cur AS (
	SELECT s.sid, s.n, s.sale, ` + activeHeld + ` AS held FROM stock_bucket s JOIN stock c ON c.id = s.sid
	WHERE s.sid = ? AND s.n = ? AND s.sale + ` + activeHeld + ` < s.count
		AND ` + openWindow("c") + `
	FOR NO KEY UPDATE OF s%s
)
UPDATE stock_bucket s SET sale = s.sale + LEAST(?, s.count - s.sale - cur.held), held = cur.held
FROM cur WHERE s.sid = cur.sid AND s.n = cur.n
RETURNING s.sale - cur.sale AS taken`

var (
	takeBucketWait   = fmt.Sprintf(takeBucketSQL, "")
	takeBucketNoWait = fmt.Sprintf(takeBucketSQL, " NOWAIT")
)

// refusals are the refusals of a sale, by the code stock_sale.reason stores them under
// (and by the words that binaries before the codes stored, which one of them may still
// write while an upgrade rolls through).
var refusals = map[string]error{
	"SOLD_OUT": ErrSoldOut, "NOT_STARTED": ErrNotStarted, "ENDED": ErrEnded,
	"sold out": ErrSoldOut, "not started": ErrNotStarted, "ended": ErrEnded,
}

// SellBatch answers every item exactly as Sell would, in order, in one transaction. The
// batch may mix commodities and repeat request ids: the first item of a request id (of a
// commodity that exists) records it, later copies get the same answer or, for another
// commodity or user, ErrRequestReused. A request id answered before keeps its answer and
// takes nothing. Each commodity is raised once, by as many units as it has left for its new
// request ids, granted in batch order; the rest are refused with the reason. If the
// transaction fails nothing is granted or recorded, and the error is returned for all.
func (r *Repo) SellBatch(ctx context.Context, items []SellItem) ([]SellResult, error) {
	if len(items) == 0 {
		return nil, nil
	}
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var out []SellResult
	var err error
	// A batch that would have to wait for a bucket out of order (see takeBuckets) starts
	// again, in a new transaction, walking every commodity's buckets from the first: that
	// walk only waits, in bucket order, and so always finishes.
	for attempt := 1; ; attempt++ {
		err = db.Transact(g, func(tx *gorm.DB) error {
			b := &saleBatch{tx: tx, items: items, fromFirst: attempt > 1}
			for _, step := range []func() error{b.readStock, b.record, b.recall, b.take} {
				if err := step(); err != nil {
					return err
				}
			}
			out = b.answers()
			return nil
		})
		if !lockNotAvailable(err) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sell batch of %d: %w", len(items), err)
	}
	return out, nil
}

// lockNotAvailable is Postgres's answer to a NOWAIT lock that another transaction holds.
func lockNotAvailable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}

// saleBatch is one SellBatch transaction, step by step (DESIGN.md, step 3): read the
// commodities, record the new request ids, recall the answers given before to the others,
// take the units of each commodity for its new request ids, and answer every item.
type saleBatch struct {
	tx    *gorm.DB
	items []SellItem
	stock map[int64]Commodity   // the commodities that exist, as the batch leaves them
	owner map[string]saleRecord // request id → the purchase it stands for, and its answer
	rids  []string              // the batch's request ids (of commodities that exist), in order
	isNew map[string]bool       // request ids this batch recorded
	// fromFirst makes takeBuckets start at bucket 0 (and so never need NOWAIT).
	fromFirst bool
}

// readStock reads the batch's commodities; an unknown one is answered without recording.
func (b *saleBatch) readStock() error {
	var sids []int64
	seen := map[int64]bool{}
	for _, it := range b.items {
		if !seen[it.ID] {
			seen[it.ID] = true
			sids = append(sids, it.ID)
		}
	}
	var rows []Commodity
	if err := b.tx.Raw(`SELECT * FROM stock_now WHERE id = ANY(?)`, db.Array(sids)).Scan(&rows).Error; err != nil {
		return err
	}
	b.stock = make(map[int64]Commodity, len(rows))
	for _, c := range rows {
		b.stock[c.ID] = c
	}
	return nil
}

// record inserts a granted sale record for the first item of each request id; the ones
// already recorded are left as they are.
func (b *saleBatch) record() error {
	b.owner = map[string]saleRecord{}
	var sids []int64
	var users []string
	for _, it := range b.items {
		if _, ok := b.stock[it.ID]; !ok {
			continue
		}
		if _, dup := b.owner[it.RequestID]; !dup {
			b.owner[it.RequestID] = saleRecord{RequestID: it.RequestID, Sid: it.ID, Buyer: it.Buyer, Granted: true}
			b.rids, sids, users = append(b.rids, it.RequestID), append(sids, it.ID), append(users, it.Buyer)
		}
	}
	var inserted []string
	if len(b.rids) > 0 {
		// Sorted, so that batches sharing request ids take their locks in the same order.
		err := b.tx.Raw(`INSERT INTO stock_sale (request_id, sid, user_id, granted)
			SELECT r, s, u, true FROM unnest(?::text[], ?::bigint[], ?::text[]) AS t(r, s, u) ORDER BY r
			ON CONFLICT (request_id) DO NOTHING RETURNING request_id`,
			db.Array(b.rids), db.Array(sids), db.Array(users)).Scan(&inserted).Error
		if err != nil {
			return err
		}
	}
	b.isNew = make(map[string]bool, len(inserted))
	for _, rid := range inserted {
		b.isNew[rid] = true
	}
	return nil
}

// recall reads the purchase and the answer of every request id recorded before.
func (b *saleBatch) recall() error {
	var old []string
	for _, rid := range b.rids {
		if !b.isNew[rid] {
			old = append(old, rid)
		}
	}
	if len(old) == 0 {
		return nil
	}
	var recs []saleRecord
	if err := b.tx.Raw(`SELECT request_id, sid, user_id, granted, reason FROM stock_sale
		WHERE request_id = ANY(?)`, db.Array(old)).Scan(&recs).Error; err != nil {
		return err
	}
	if len(recs) != len(old) {
		return fmt.Errorf("read %d of %d recorded sales", len(recs), len(old))
	}
	for _, rec := range recs {
		b.owner[rec.RequestID] = rec
	}
	return nil
}

// take raises each commodity once (takeSQL) by the units it has left for its new request
// ids, in batch order, and records the rest as refused, with the reason. Commodities go in
// id order, so that concurrent batches lock their rows in the same order.
func (b *saleBatch) take() error {
	fresh := map[int64][]string{}
	var hot []int64
	for _, rid := range b.rids {
		if rec := b.owner[rid]; b.isNew[rid] {
			if len(fresh[rec.Sid]) == 0 {
				hot = append(hot, rec.Sid)
			}
			fresh[rec.Sid] = append(fresh[rec.Sid], rid)
		}
	}
	slices.Sort(hot)
	for _, sid := range hot {
		take := b.takeOne
		if b.stock[sid].Buckets > 1 {
			take = b.takeBuckets
		}
		if err := take(sid, fresh[sid]); err != nil {
			return err
		}
	}
	return nil
}

// takeBuckets takes commodity sid's units for want from its buckets, and refuses the rest.
// It starts at a random bucket, so that concurrent batches take from different rows, and
// goes on to the next while it wants more: up to the last bucket it waits for a bucket that
// another seller holds; past it, coming round to the lower ones, it does not wait (NOWAIT),
// and if one is held the whole batch starts again from bucket 0 (fromFirst). So locks are
// only ever waited for in bucket order, and two batches cannot deadlock. Every bucket has
// been tried, under its lock, before a buyer is refused "sold out": none is refused while a
// bucket has a unit.
func (b *saleBatch) takeBuckets(sid int64, want []string) error {
	k := b.stock[sid].Buckets
	start := rand.IntN(k)
	if b.fromFirst {
		start = 0
	}
	left := want
	var granted []string
	var from []int
	for i := 0; i < k && len(left) > 0; i++ {
		n, q := (start+i)%k, takeBucketWait
		if start+i >= k {
			q = takeBucketNoWait
		}
		var taken int64
		res := b.tx.Raw(q, sid, n, len(left)).Scan(&taken)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 || taken == 0 {
			continue
		}
		if taken < 0 || taken > int64(len(left)) {
			return fmt.Errorf("commodity %d bucket %d: took %d of %d", sid, n, taken, len(left))
		}
		for _, rid := range left[:taken] {
			granted, from = append(granted, rid), append(from, n)
		}
		left = left[taken:]
	}
	if len(granted) > 0 {
		if err := b.tx.Exec(`UPDATE stock_sale s SET bucket = t.n FROM unnest(?::text[], ?::int[]) AS t(r, n)
			WHERE s.request_id = t.r`, db.Array(granted), db.Array(from)).Error; err != nil {
			return err
		}
	}
	var row takenRow
	if err := b.tx.Raw(refusedSQL, sid).Scan(&row).Error; err != nil {
		return err
	}
	b.stock[sid] = row.Commodity
	return b.refuse(left, row.Reason)
}

// takeOne takes commodity sid's units for the request ids want, and refuses the rest.
func (b *saleBatch) takeOne(sid int64, want []string) error {
	var row takenRow
	res := b.tx.Raw(takeSQL, sid, len(want)).Scan(&row)
	if res.Error == nil && res.RowsAffected == 0 {
		res = b.tx.Raw(refusedSQL, sid).Scan(&row)
	}
	if res.Error != nil {
		return res.Error
	}
	if row.ID != sid || row.Taken < 0 || row.Taken > int64(len(want)) {
		return fmt.Errorf("commodity %d: took %d of %d", sid, row.Taken, len(want))
	}
	b.stock[sid] = row.Commodity
	return b.refuse(want[row.Taken:], row.Reason)
}

// refuse records the request ids refused as refused, for reason ("": sold out, the
// commodity had fewer units left than were asked for).
func (b *saleBatch) refuse(refused []string, reason string) error {
	if len(refused) == 0 {
		return nil
	}
	if reason == "" {
		reason = "SOLD_OUT"
	}
	for _, rid := range refused {
		rec := b.owner[rid]
		rec.Granted, rec.Reason = false, reason
		b.owner[rid] = rec
	}
	return b.tx.Exec(`UPDATE stock_sale SET granted = false, reason = ? WHERE request_id = ANY(?)`,
		reason, db.Array(refused)).Error
}

// answers answers every item from its request id's record.
func (b *saleBatch) answers() []SellResult {
	out := make([]SellResult, len(b.items))
	for i, it := range b.items {
		c, ok := b.stock[it.ID]
		switch rec := b.owner[it.RequestID]; {
		case !ok:
			out[i].Err = ErrNotFound
		case rec.Sid != it.ID || rec.Buyer != it.Buyer:
			out[i].Err = ErrRequestReused
		case !rec.Granted:
			out[i].Err = refusals[rec.Reason]
			if out[i].Err == nil {
				out[i].Err = ErrSoldOut
			}
		}
		out[i].Commodity = c
	}
	return out
}

// ReleaseResult answers one request id given to ReleaseBatch. Err is nil when the unit is
// back on sale; Released says whether this call put it back (false: an earlier one did).
// Otherwise Err is ErrNoSale or ErrNotGranted. Sid is the sale's commodity (0 if none).
type ReleaseResult struct {
	Sid      int64
	Released bool
	Err      error
}

// Release gives back the unit granted to requestID: a batch of one (see ReleaseBatch).
func (r *Repo) Release(ctx context.Context, requestID string) (ReleaseResult, error) {
	res, err := r.ReleaseBatch(ctx, []string{requestID})
	if err != nil {
		return ReleaseResult{}, err
	}
	return res[0], nil
}

// ReleaseBatch gives back the units granted to requestIDs, in one transaction: each granted
// sale not yet released is marked released with a conditional UPDATE, and only the rows
// that update changed take their unit off their commodity's sale, so a unit goes back
// exactly once however often, or however concurrently, it is released. A unit given back
// is held for the return delay before it is on sale again (see SoldOut). Results are in the
// order of requestIDs; a request id given twice is released once. If the transaction fails
// nothing is released, and the error is returned.
func (r *Repo) ReleaseBatch(ctx context.Context, requestIDs []string) ([]ReleaseResult, error) {
	if len(requestIDs) == 0 {
		return nil, nil
	}
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	type sale struct {
		RequestID string
		Sid       int64
		Granted   bool
		Bucket    *int
	}
	var changed, known []sale
	err := db.Transact(g, func(tx *gorm.DB) error {
		// Rows are locked in request id order, so that overlapping batches do not deadlock.
		if err := tx.Raw(`UPDATE stock_sale SET released = true WHERE request_id IN (
				SELECT request_id FROM stock_sale WHERE request_id = ANY(?) AND granted AND NOT released
				ORDER BY request_id FOR UPDATE)
			AND granted AND NOT released RETURNING request_id, sid, granted, bucket`, db.Array(requestIDs)).Scan(&changed).Error; err != nil {
			return err
		}
		// Each unit goes back where it was taken from: its commodity's row, or its bucket.
		// Commodities in id order and buckets in bucket order, as SellBatch takes them.
		type place struct {
			sid    int64
			bucket int // -1: the stock row
		}
		per := map[place]int64{}
		for _, s := range changed {
			p := place{s.Sid, -1}
			if s.Bucket != nil {
				p.bucket = *s.Bucket
			}
			per[p]++
		}
		places := make([]place, 0, len(per))
		for p := range per {
			places = append(places, p)
		}
		slices.SortFunc(places, func(a, b place) int {
			if a.sid != b.sid {
				return cmp.Compare(a.sid, b.sid)
			}
			return cmp.Compare(a.bucket, b.bucket)
		})
		// The units go back held: on sale again only after the return delay, counted from
		// when this statement has the row (clock_timestamp(), not the transaction's start),
		// so from after any SoldOut that did not see them (see SoldOut). Units given back
		// while others are held join their hold, which ends sooner: a snapshot alive now
		// ends by then too (it was taken while that hold was on, or before it began, and so
		// at least a delay before its end), and returns never keep each other off sale.
		for _, p := range places {
			table, where, args := "stock", "id = ?", []any{p.sid}
			version := ", version = version + 1"
			if p.bucket >= 0 {
				table, where, args, version = "stock_bucket", "sid = ? AND n = ?", []any{p.sid, p.bucket}, ""
			}
			if err := tx.Exec(`UPDATE `+table+` s SET sale = sale - ?, held = `+heldAtClock+` + ?,
				held_until = CASE WHEN `+heldAtClock+` > 0 THEN s.held_until
					ELSE clock_timestamp() + make_interval(secs => ?) END`+version+` WHERE `+where,
				append([]any{per[p], per[p], r.returnDelay.Seconds()}, args...)...).Error; err != nil {
				return err
			}
		}
		return tx.Raw(`SELECT request_id, sid, granted, bucket FROM stock_sale WHERE request_id = ANY(?)`,
			db.Array(requestIDs)).Scan(&known).Error
	})
	if err != nil {
		return nil, fmt.Errorf("release %d sales: %w", len(requestIDs), err)
	}
	byID := make(map[string]sale, len(known))
	for _, s := range known {
		byID[s.RequestID] = s
	}
	now := make(map[string]bool, len(changed))
	for _, s := range changed {
		now[s.RequestID] = true
	}
	out := make([]ReleaseResult, len(requestIDs))
	for i, rid := range requestIDs {
		s, ok := byID[rid]
		switch {
		case !ok:
			out[i].Err = ErrNoSale
		case !s.Granted:
			out[i].Sid, out[i].Err = s.Sid, ErrNotGranted
		default:
			out[i].Sid, out[i].Released = s.Sid, now[rid]
			delete(now, rid) // a request id given twice was released by the first copy
		}
	}
	return out, nil
}
