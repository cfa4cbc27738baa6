-- The photos admins upload, one row per stored width (never wider than the upload). Without a
-- row a product's image is the illustration drawn for it. Replaced whole, in the transaction
-- that bumps the product's version, so a URL with a version never names two different images.
CREATE TABLE product_images (
    product_id    BLOB NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    width         INTEGER NOT NULL CHECK (width > 0),
    height        INTEGER NOT NULL CHECK (height > 0),
    content_type  TEXT NOT NULL,
    bytes         BLOB NOT NULL,
    PRIMARY KEY (product_id, width)
);
