package repo_test

import (
	"context"
	"errors"
	"testing"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/stock-srv/migrations"
	"secbuy/stock-srv/repo"
)

// Sales recorded while user_id was a number survive migration buyer_text: the same numeric
// buyer resending its request id gets its grant back, another buyer is refused it, and a
// string buyer buys.
func TestBuyerMigrationKeepsNumericUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t, "stock", dbtest.Before(t, migrations.FS, "_buyer_text.sql"))
	var sid int64
	if err := d.Raw(`INSERT INTO stock (name, count, sale) VALUES ('phone', 2, 1) RETURNING id`).Scan(&sid).Error; err != nil {
		t.Fatal(err)
	}
	if err := d.Exec(`INSERT INTO stock_sale (request_id, sid, user_id, granted) VALUES ('42:a', ?, 42, true)`, sid).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, d, "stock", migrations.FS); err != nil {
		t.Fatal(err)
	}
	r := repo.New(d)
	if c, err := r.Sell(ctx, sid, "42:a", "42"); err != nil || c.Sale != 1 {
		t.Errorf("resend of 42:a by 42 = sale %d, %v; want the old grant, sale 1", c.Sale, err)
	}
	if _, err := r.Sell(ctx, sid, "42:a", "6f1c2a9e"); !errors.Is(err, repo.ErrRequestReused) {
		t.Errorf("42:a by another buyer = %v; want request reused", err)
	}
	if c, err := r.Sell(ctx, sid, "b1:a", "6f1c2a9e"); err != nil || c.Sale != 2 {
		t.Errorf("sale to 6f1c2a9e = sale %d, %v; want granted, sale 2", c.Sale, err)
	}
	if a, err := r.Audit(ctx, sid); err != nil || a.Sale != 2 {
		t.Errorf("Audit = %+v, %v; want sale 2", a, err)
	}
}
