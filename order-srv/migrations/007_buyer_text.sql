-- The buyer is the token's sub, a string (RFC 7519): user_id holds it as text. A numeric
-- user's orders keep their id as its decimal digits ('42'), the very string its token's
-- sub is, so the same buyer finds them and its live order still blocks a second one.
-- orders_one_live, orders_user and orders_holders are rebuilt on the text column, with the
-- same columns and the same uniqueness. The old check (user_id > 0) is of a number: it
-- goes, and the text's own comes in (what package buyer accepts is 1 to 255 characters).
-- The rewrite takes the table's exclusive lock: give up soon rather than queue a sale's
-- inserts behind it (the service exits, is restarted and tries again).
SET LOCAL lock_timeout = '2s';
ALTER TABLE orders
    DROP CONSTRAINT orders_user_id_check,
    ALTER COLUMN user_id TYPE text USING user_id::text,
    ADD CONSTRAINT orders_buyer CHECK (user_id <> '' AND char_length(user_id) <= 255);
