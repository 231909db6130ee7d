-- OrderService.ListOrders pages through one buyer's orders, newest first: an index scan
-- of this (read backwards) instead of reading every order. orders_one_live covers live
-- orders only. Plain CREATE INDEX: migrations run in a transaction, where CONCURRENTLY
-- cannot; it holds off writes to orders while it builds.
CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, id);
