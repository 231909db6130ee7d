package repo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"secbuy/order-srv/repo"
)

func TestListByUser(t *testing.T) {
	t.Parallel()
	r, _ := newRepo(t)
	ctx := context.Background()
	// User 42's orders in every state, interleaved with user 43's.
	var mine []repo.Order // oldest first
	for i := range 5 {
		mine = append(mine, insert(t, r, int64(10+i), 42, fmt.Sprintf("42:%d", i)))
		insert(t, r, int64(10+i), 43, fmt.Sprintf("43:%d", i))
	}
	if _, err := r.MarkCreated(ctx, mine[1].ID, "phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.MarkFailed(ctx, mine[2].ID, "SOLD_OUT"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.MarkCreated(ctx, mine[3].ID, "car"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Cancel(ctx, []int64{mine[3].ID}, repo.ExpiredReason); err != nil {
		t.Fatal(err)
	}
	wantIDs := orderIDs(mine)
	slices.Reverse(wantIDs)

	all, more, err := r.ListByUser(ctx, "42", 0, 10)
	if err != nil || more || !slices.Equal(orderIDs(all), wantIDs) {
		t.Fatalf("ListByUser(42, 0, 10) = %v, more %v, %v; want %v, no more", orderIDs(all), more, err, wantIDs)
	}
	wantStates := []string{repo.Pending, repo.Cancelled, repo.Failed, repo.Created, repo.Pending}
	for i, o := range all {
		if o.Buyer != "42" || o.State != wantStates[i] {
			t.Errorf("order %d = user %s, %s; want user 42, %s", o.ID, o.Buyer, o.State, wantStates[i])
		}
	}
	if all[1].Reason != repo.ExpiredReason || all[2].Reason != "SOLD_OUT" || all[3].Name != "phone" {
		t.Errorf("cancelled, failed, created orders = %+v, %+v, %+v; want reasons and name kept", all[1], all[2], all[3])
	}

	tests := []struct {
		name          string
		offset, limit int64
		want          []int64
		wantMore      bool
	}{
		{"first page", 0, 2, wantIDs[0:2], true},
		{"middle page", 2, 2, wantIDs[2:4], true},
		{"last page, short", 4, 2, wantIDs[4:], false},
		{"page ends with the last order", 3, 2, wantIDs[3:], false},
		{"exactly all", 0, 5, wantIDs, false},
		{"past the end", 5, 2, nil, false},
		{"far past the end", 1000, 2, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, more, err := r.ListByUser(ctx, "42", tc.offset, tc.limit)
			if err != nil || more != tc.wantMore || !slices.Equal(orderIDs(got), tc.want) {
				t.Errorf("ListByUser(42, %d, %d) = %v, more %v, %v; want %v, more %v",
					tc.offset, tc.limit, orderIDs(got), more, err, tc.want, tc.wantMore)
			}
		})
	}

	theirs, _, err := r.ListByUser(ctx, "43", 0, 10)
	if err != nil || len(theirs) != 5 {
		t.Fatalf("ListByUser(43) = %d orders, %v; want 5", len(theirs), err)
	}
	for _, o := range theirs {
		if o.Buyer != "43" {
			t.Errorf("user 43's list holds order %d of user %s", o.ID, o.Buyer)
		}
	}
	if got, more, err := r.ListByUser(ctx, "44", 0, 10); err != nil || len(got) != 0 || more {
		t.Errorf("ListByUser(44) = %v, more %v, %v; want none", got, more, err)
	}
}

// TestListByUserUsesIndex checks that the query of ListByUser can read migration 005's
// index, backwards and already in order, instead of reading and sorting every order of the
// user (with the other scans off: the test table is too small for the planner to prefer
// the index on its own).
func TestListByUserUsesIndex(t *testing.T) {
	t.Parallel()
	_, d := newRepo(t)
	var plan []string
	err := d.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off`).Error; err != nil {
			return err
		}
		return tx.Raw(`EXPLAIN SELECT * FROM orders WHERE user_id = '42' ORDER BY id DESC OFFSET 0 LIMIT 21`).Scan(&plan).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "Index Scan Backward using orders_user") || strings.Contains(text, "Sort") {
		t.Errorf("plan of the list query:\n%s\nwant a backward scan of orders_user and no sort", text)
	}
}
