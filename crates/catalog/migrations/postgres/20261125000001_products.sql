CREATE TABLE products (
    id            UUID PRIMARY KEY,
    sku           TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    price_minor   BIGINT NOT NULL CHECK (price_minor >= 0),
    currency      TEXT NOT NULL,
    category      TEXT NOT NULL,
    image_url     TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX products_category ON products (category, name);

-- Read model built from ProductChanged events: every price a product has had.
CREATE TABLE price_history (
    product_id    UUID NOT NULL,
    version       BIGINT NOT NULL,
    price_minor   BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    changed_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (product_id, version)
);
