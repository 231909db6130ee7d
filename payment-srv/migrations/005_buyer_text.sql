-- The buyer is the token's sub, a string (RFC 7519): user_id holds it as text. A numeric
-- user's payments keep their id as its decimal digits ('42'), the very string its token's
-- sub is, so the same buyer pays and reads them. The rewrite takes the table's exclusive
-- lock: give up soon rather than queue the consumer's inserts behind it (the service
-- exits, is restarted and tries again).
SET LOCAL lock_timeout = '2s';
ALTER TABLE payments
    ALTER COLUMN user_id TYPE text USING user_id::text,
    ADD CONSTRAINT payments_buyer CHECK (user_id <> '' AND char_length(user_id) <= 255);
