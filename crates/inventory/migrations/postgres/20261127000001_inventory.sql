-- Stock per SKU. The CHECKs are the last line of defence: the conditional UPDATEs never let
-- available (on_hand - reserved) go below zero in the first place.
CREATE TABLE stock (
    sku         TEXT PRIMARY KEY,
    on_hand     BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved    BIGINT NOT NULL CHECK (reserved >= 0),
    updated_at  TIMESTAMPTZ NOT NULL,
    CHECK (reserved <= on_hand)
);

-- Stock held for a checkout, under the id its caller chose (the order id).
CREATE TABLE reservations (
    id              UUID PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released')),
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    settled_at      TIMESTAMPTZ,
    release_reason  TEXT
);
-- What the expiry sweep looks for.
CREATE INDEX reservations_held_expiry ON reservations (expires_at) WHERE state = 'held';

CREATE TABLE reservation_lines (
    reservation_id  UUID NOT NULL REFERENCES reservations (id),
    sku             TEXT NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, sku)
);
