CREATE TABLE products (
    id            BLOB PRIMARY KEY,
    sku           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    price_minor   INTEGER NOT NULL CHECK (price_minor >= 0),
    currency      TEXT NOT NULL,
    category      TEXT NOT NULL,
    image_url     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX products_category ON products (category, name);

-- Read model built from ProductChanged events: every price a product has had.
CREATE TABLE price_history (
    product_id    BLOB NOT NULL,
    version       INTEGER NOT NULL,
    price_minor   INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    changed_at    TEXT NOT NULL,
    PRIMARY KEY (product_id, version)
);
