-- basic/outbox reads a traceparent column from every outbox (order-srv's carries each
-- press's trace on to payment-srv). payment-srv's own events, of expiries, are not traced
-- today: their rows keep ''.
-- The ALTER takes the table's exclusive lock for an instant, but waits for it behind a
-- relay step of an older instance (up to seconds), and every insert would queue behind
-- it: give up soon instead (the service exits and is restarted, and tries again).
SET LOCAL lock_timeout = '2s';
ALTER TABLE payment_outbox ADD COLUMN IF NOT EXISTS traceparent text NOT NULL DEFAULT '';
