package repo_test

import (
	"context"
	"errors"
	"testing"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/payment-srv/migrations"
	"secbuy/payment-srv/repo"
)

// Payments made while user_id was a number survive migration buyer_text: the same numeric
// sub reads and pays them, another buyer may not, and a string buyer's payment is its own.
func TestBuyerMigrationKeepsNumericUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t, "payment", dbtest.Before(t, migrations.FS, "_buyer_text.sql"))
	if err := d.Exec(`INSERT INTO payments (sid, commodity_id, name, user_id) VALUES (5, 7, 'goods', 42)`).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, d, "payment", migrations.FS); err != nil {
		t.Fatal(err)
	}
	r := repo.New(d)
	if p, err := r.Get(ctx, 5, "42"); err != nil || p.Buyer != "42" || p.Name != "goods" {
		t.Fatalf("Get(5, 42) = %+v, %v; want user 42's payment", p, err)
	}
	if _, err := r.Pay(ctx, 5, "042"); !errors.Is(err, repo.ErrNotYours) {
		t.Errorf("Pay(5, 042) = %v; want not yours", err)
	}
	if p, err := r.Pay(ctx, 5, "42"); err != nil || p.State != repo.StatePaid {
		t.Errorf("Pay(5, 42) = %+v, %v; want paid", p, err)
	}
	uuid := "6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34"
	if _, err := r.Create(ctx, repo.Payment{Sid: 6, CommodityID: 7, Name: "goods", Buyer: uuid}); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Pay(ctx, 6, uuid); err != nil || p.State != repo.StatePaid || p.Buyer != uuid {
		t.Errorf("Pay(6, %s) = %+v, %v; want paid", uuid, p, err)
	}
	if _, err := r.Create(ctx, repo.Payment{Sid: 7, CommodityID: 7, Name: "goods"}); err == nil {
		t.Error("a payment of the empty buyer was stored")
	}
}
