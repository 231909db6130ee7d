-- The buyer is the token's sub, a string (RFC 7519): user_id holds it as text. A numeric
-- user's rows keep their id as its decimal digits ('42'), the very string its token's sub
-- is, so the same buyer finds them. A rewrite of stock_sale under an exclusive lock: a
-- busy sale waits (lock_timeout: the start-up fails and is retried rather than queue the
-- sale behind it).
SET LOCAL lock_timeout = '2s';
ALTER TABLE stock_sale
    ALTER COLUMN user_id TYPE text USING user_id::text,
    ADD CONSTRAINT stock_sale_buyer CHECK (user_id <> '' AND char_length(user_id) <= 255);
