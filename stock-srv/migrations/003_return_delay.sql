-- A unit given back (Release) does not go back on sale at once: it is held until
-- held_until, a moment later, so that an edge told "sold out, for at least that long" is
-- never wrong (see StockService.SoldOut). held counts the units so held; past held_until
-- they are on sale again, and the next sale resets held to 0.
ALTER TABLE stock
    ADD COLUMN held bigint NOT NULL DEFAULT 0,
    ADD COLUMN held_until timestamptz,
    ADD CONSTRAINT stock_held CHECK (held >= 0 AND sale + held <= count);
