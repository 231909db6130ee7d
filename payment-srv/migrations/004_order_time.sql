-- The time to pay runs from when the order was made (payment.payevent's createTime), not
-- from when this row was inserted: if payment-srv was down during a sale, the deadline is
-- still the one the buyer was told. NULL for rows of events without it (older producers)
-- and rows made before this migration: their create_time counts, as before.
-- The ALTER and the index take the table's lock: wait for it at most 2 s behind an older
-- instance's statements (the service exits, is restarted, and tries again).
SET LOCAL lock_timeout = '2s';
ALTER TABLE payments ADD COLUMN IF NOT EXISTS order_time timestamptz;
-- The expiry loop finds unpaid payments by this; payments_unpaid (on create_time) stays for
-- the instances of the previous version during a rolling upgrade.
CREATE INDEX IF NOT EXISTS payments_unpaid_since ON payments ((coalesce(order_time, create_time))) WHERE state = 0;
