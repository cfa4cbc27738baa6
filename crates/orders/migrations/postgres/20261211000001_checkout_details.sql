-- What a checkout now asks for beside the card: the order's short number customers quote, a
-- mobile number for text messages, and the delivery (an option, its cost, and the address;
-- 'collect' orders have no address and cost nothing). Orders placed before get a number made
-- from the random end of their id.
ALTER TABLE orders ADD COLUMN number TEXT;
UPDATE orders SET number = 'NB-' || upper(substr(replace(id::text, '-', ''), 25, 8));
CREATE UNIQUE INDEX orders_by_number ON orders (number);
ALTER TABLE orders ADD COLUMN phone TEXT;
ALTER TABLE orders ADD COLUMN shipping_option TEXT NOT NULL DEFAULT 'collect';
ALTER TABLE orders ADD COLUMN shipping_minor BIGINT NOT NULL DEFAULT 0 CHECK (shipping_minor >= 0);
ALTER TABLE orders ADD COLUMN ship_name TEXT;
ALTER TABLE orders ADD COLUMN ship_line1 TEXT;
ALTER TABLE orders ADD COLUMN ship_line2 TEXT;
ALTER TABLE orders ADD COLUMN ship_city TEXT;
ALTER TABLE orders ADD COLUMN ship_postal_code TEXT;
ALTER TABLE orders ADD COLUMN ship_country TEXT;
