-- Stock per SKU. The CHECKs are the last line of defence: the conditional UPDATEs never let
-- available (on_hand - reserved) go below zero in the first place.
CREATE TABLE stock (
    sku         TEXT PRIMARY KEY,
    on_hand     INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved    INTEGER NOT NULL CHECK (reserved >= 0),
    updated_at  TEXT NOT NULL,
    CHECK (reserved <= on_hand)
);

-- Stock held for a checkout, under the id its caller chose (the order id).
CREATE TABLE reservations (
    id              BLOB PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released')),
    expires_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    settled_at      TEXT,
    release_reason  TEXT
);
-- What the expiry sweep looks for.
CREATE INDEX reservations_held_expiry ON reservations (expires_at) WHERE state = 'held';

CREATE TABLE reservation_lines (
    reservation_id  BLOB NOT NULL REFERENCES reservations (id),
    sku             TEXT NOT NULL,
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, sku)
);
