-- The W3C traceparent of the change an event announces (basic/outbox), as in order-srv's
-- outbox; '' when it was not traced.
ALTER TABLE payment_outbox ADD COLUMN IF NOT EXISTS traceparent text NOT NULL DEFAULT '';
