-- One row per order: where its checkout saga is (`state`), and who runs it now (the lease). A
-- customer's Idempotency-Key is unique per customer, so the same key can never make two orders.
CREATE TABLE orders (
    id                BLOB PRIMARY KEY,
    user_id           BLOB NOT NULL,
    idempotency_key   TEXT NOT NULL,
    -- The card's last four digits and expiry: a replay with another card is a different request.
    fingerprint       TEXT NOT NULL,
    email             TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('placed', 'reserved', 'authorized', 'confirmed',
                          'captured', 'stock_committed', 'completed', 'compensating', 'cancelled')),
    total_minor       INTEGER NOT NULL CHECK (total_minor > 0),
    currency          TEXT NOT NULL,
    cancel_reason     TEXT,
    refunded          BOOLEAN NOT NULL DEFAULT FALSE,
    -- Consecutive failed attempts at the current step (a service that did not answer).
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       BLOB,
    lease_until       TEXT,
    created_at        TEXT NOT NULL,
    -- When the state last changed; a lease renewal does not count.
    updated_at        TEXT NOT NULL,
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_by_customer ON orders (user_id, created_at DESC);
CREATE INDEX orders_by_time ON orders (created_at DESC);
CREATE INDEX orders_open ON orders (state) WHERE state NOT IN ('completed', 'cancelled');

CREATE TABLE order_lines (
    order_id          BLOB NOT NULL REFERENCES orders (id),
    position          INTEGER NOT NULL,
    sku               TEXT NOT NULL,
    name              TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor  INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    currency          TEXT NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- Every step a checkout took, in order: what the customer and an operator read.
CREATE TABLE order_steps (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id          BLOB NOT NULL REFERENCES orders (id),
    step              TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('done', 'failed', 'retrying')),
    detail            TEXT,
    at                TEXT NOT NULL
);
CREATE INDEX order_steps_by_order ON order_steps (order_id, seq);
