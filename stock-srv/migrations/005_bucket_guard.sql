-- A commodity of several buckets is sold from its stock_bucket rows only; its stock row's
-- sale and held stay 0. A stock-srv from before buckets (during a rolling upgrade) would
-- sell from the stock row: this makes that sale fail (its batch is answered busy and
-- resent) instead of selling the units twice.
ALTER TABLE stock ADD CONSTRAINT stock_bucketed_row_unsold CHECK (buckets = 1 OR (sale = 0 AND held = 0));
