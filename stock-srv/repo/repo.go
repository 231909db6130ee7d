// Package repo is stock-srv's storage: commodities and the record of every sale, in Postgres.
package repo

import (
	"context"
	"errors"
	"fmt"
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
)

// Commodity is a row of stock. A nil Start or End leaves that side of the window open.
type Commodity struct {
	ID         int64
	Name       string
	Count      int64
	Sale       int64
	CreateTime time.Time
	Version    int64
	StartTime  *time.Time
	EndTime    *time.Time
}

// TableName is gorm's table for Commodity.
func (Commodity) TableName() string { return "stock" }

// Audit is what the invariant checks read: Granted counts live granted sale records.
type Audit struct {
	Count, Sale, Granted int64
}

// Repo is the Postgres store.
type Repo struct {
	db *db.DB
}

// New returns a Repo on d.
func New(d *db.DB) *Repo { return &Repo{db: d} }

// Create inserts c (Name, Count, StartTime, EndTime) and returns the stored row.
func (r *Repo) Create(ctx context.Context, c Commodity) (Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	row := Commodity{Name: c.Name, Count: c.Count, StartTime: c.StartTime, EndTime: c.EndTime}
	if err := g.Omit("ID", "Sale", "CreateTime", "Version").Create(&row).Error; err != nil {
		return Commodity{}, fmt.Errorf("create commodity: %w", err)
	}
	return r.Get(ctx, row.ID)
}

// Get returns commodity id, or ErrNotFound.
func (r *Repo) Get(ctx context.Context, id int64) (Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var c Commodity
	err := g.Where("id = ?", id).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Commodity{}, ErrNotFound
	}
	if err != nil {
		return Commodity{}, fmt.Errorf("get commodity %d: %w", id, err)
	}
	return c, nil
}

// List returns up to limit commodities after skipping offset, by id.
func (r *Repo) List(ctx context.Context, offset, limit int) ([]Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var cs []Commodity
	if err := g.Order("id").Offset(offset).Limit(limit).Find(&cs).Error; err != nil {
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
		(SELECT count(*) FROM stock_sale WHERE sid = s.id AND granted AND NOT released) AS granted
		FROM stock s WHERE id = ?`, id).Scan(&a)
	if res.Error != nil {
		return Audit{}, fmt.Errorf("audit commodity %d: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return Audit{}, ErrNotFound
	}
	return a, nil
}

type saleRecord struct {
	Sid     int64
	UserID  int64
	Granted bool
	Reason  string
}

// Sell takes one unit of commodity id for requestID, in one transaction: it records the
// request id, then raises sale with one conditional UPDATE that holds only while units
// remain and the window is open. Concurrent callers queue on the row, and each sees the
// sale left by the one before, so none is refused while stock remains and sale never passes
// count. A request id that was answered before gets the same answer and takes nothing.
func (r *Repo) Sell(ctx context.Context, id int64, requestID string, userID int64) (Commodity, error) {
	g, cancel := r.db.Ctx(ctx)
	defer cancel()
	var c Commodity
	var outcome error
	err := g.Transaction(func(tx *gorm.DB) error {
		ins := tx.Exec(`INSERT INTO stock_sale (request_id, sid, user_id, granted) VALUES (?, ?, ?, true)
			ON CONFLICT (request_id) DO NOTHING`, requestID, id, userID)
		if isForeignKey(ins.Error) {
			outcome = ErrNotFound
			return outcome
		}
		if ins.Error != nil {
			return ins.Error
		}
		if ins.RowsAffected == 0 {
			var rec saleRecord
			if err := tx.Raw(`SELECT sid, user_id, granted, reason FROM stock_sale WHERE request_id = ?`, requestID).Scan(&rec).Error; err != nil {
				return err
			}
			if rec.Sid != id || rec.UserID != userID {
				outcome = ErrRequestReused
			} else if !rec.Granted {
				outcome = reasonErr(rec.Reason)
			}
			return tx.Where("id = ?", id).Take(&c).Error
		}
		upd := tx.Raw(`UPDATE stock SET sale = sale + 1, version = version + 1
			WHERE id = ? AND sale < count
			AND (start_time IS NULL OR start_time <= now()) AND (end_time IS NULL OR end_time > now())
			RETURNING *`, id).Scan(&c)
		if upd.Error != nil {
			return upd.Error
		}
		if upd.RowsAffected == 1 {
			return nil
		}
		// Only the reason is read here; the decision was made, atomically, by the update.
		var reason string
		if err := tx.Raw(`SELECT CASE WHEN start_time > now() THEN 'not started'
			WHEN end_time <= now() THEN 'ended' ELSE 'sold out' END FROM stock WHERE id = ?`, id).Scan(&reason).Error; err != nil {
			return err
		}
		outcome = reasonErr(reason)
		if err := tx.Where("id = ?", id).Take(&c).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE stock_sale SET granted = false, reason = ? WHERE request_id = ?`, reason, requestID).Error
	})
	if err != nil && !errors.Is(err, outcome) {
		return Commodity{}, fmt.Errorf("sell commodity %d for %s: %w", id, requestID, err)
	}
	return c, outcome
}

func reasonErr(reason string) error {
	for _, e := range []error{ErrSoldOut, ErrNotStarted, ErrEnded} {
		if e.Error() == reason {
			return e
		}
	}
	return ErrSoldOut
}

func isForeignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
