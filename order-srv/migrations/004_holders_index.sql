-- OrderService.Holders reads the orders of a sold-out commodity that are not failed, on
-- every refresh of every order-web; without this it would step over the crowd's failed
-- orders each time.
CREATE INDEX orders_holders ON orders (sid) WHERE state IN ('pending', 'created', 'cancelled');
