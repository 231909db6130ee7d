package repo_test

import (
	"context"
	"errors"
	"testing"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/order-srv/migrations"
	"secbuy/order-srv/repo"
)

// Orders made while user_id was a number survive migration buyer_text, and the same
// numeric sub finds them: its list, its live order (which still blocks a second one), its
// request ids and the holders.
func TestBuyerMigrationKeepsNumericUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t, "order", dbtest.Before(t, migrations.FS, "_buyer_text.sql"))
	var ids []int64
	if err := d.Raw(`INSERT INTO orders (sid, user_id, request_id, state, name) VALUES
		(7, 42, '42:a', 'created', 'phone'), (8, 42, '42:b', 'failed', ''), (7, 43, '43:a', 'pending', '')
		RETURNING id`).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, d, "order", migrations.FS); err != nil {
		t.Fatal(err)
	}
	r := repo.New(d)
	mine, more, err := r.ListByUser(ctx, "42", 0, 10)
	if err != nil || more || len(mine) != 2 || mine[0].ID != ids[1] || mine[1].ID != ids[0] || mine[1].Buyer != "42" || mine[1].Name != "phone" {
		t.Fatalf("ListByUser(42) = %+v, more %v, %v; want orders %d and %d", mine, more, err, ids[1], ids[0])
	}
	if o, isNew, err := r.Insert(ctx, 7, "42", "42:c"); !errors.Is(err, repo.ErrAlreadyBought) || isNew || o.ID != ids[0] {
		t.Errorf("a second live order of user 42 = %d, new %v, %v; want order %d, already bought", o.ID, isNew, err, ids[0])
	}
	if o, isNew, err := r.Insert(ctx, 7, "42", "42:a"); err != nil || isNew || o.ID != ids[0] {
		t.Errorf("the old request id again = %d, new %v, %v; want order %d back", o.ID, isNew, err, ids[0])
	}
	if _, _, err := r.Insert(ctx, 7, "6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34", "42:a"); !errors.Is(err, repo.ErrRequestReused) {
		t.Errorf("user 42's request id by another buyer: %v; want request reused", err)
	}
	holders, err := r.Holders(ctx, 7)
	if err != nil || len(holders) != 2 {
		t.Errorf("Holders(7) = %v, %v; want 42 and 43", holders, err)
	}
	if err := d.Exec(`INSERT INTO orders (sid, user_id, request_id) VALUES (9, '', 'x')`).Error; err == nil {
		t.Error("an order of the empty buyer was stored")
	}
}

// A buyer of any string buys, lists and is told apart from one whose digits differ.
func TestStringBuyers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := newRepo(t)
	uuid := "6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34"
	o, isNew, err := r.Insert(ctx, 7, uuid, uuid+":a")
	if err != nil || !isNew || o.Buyer != uuid {
		t.Fatalf("Insert = %+v, new %v, %v", o, isNew, err)
	}
	if _, _, err := r.Insert(ctx, 7, uuid, uuid+":b"); !errors.Is(err, repo.ErrAlreadyBought) {
		t.Errorf("second live order of %s: %v; want already bought", uuid, err)
	}
	if _, isNew, err := r.Insert(ctx, 7, "042", "042:a"); err != nil || !isNew {
		t.Errorf("buyer 042 = new %v, %v; want its own order", isNew, err)
	}
	if _, isNew, err := r.Insert(ctx, 7, "42", "42:a"); err != nil || !isNew {
		t.Errorf("buyer 42 beside 042 = new %v, %v; want its own order", isNew, err)
	}
	if got, _, err := r.ListByUser(ctx, uuid, 0, 10); err != nil || len(got) != 1 || got[0].ID != o.ID {
		t.Errorf("ListByUser(%s) = %v, %v; want order %d", uuid, orderIDs(got), err, o.ID)
	}
}
