-- One row per payment, under the id its caller chose (the order id). Only the card's last four
-- digits and brand are kept: never the number, never the CVC.
CREATE TABLE payments (
    id              UUID PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'authorized', 'declined', 'captured', 'voided', 'refunded')),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    card_last4      TEXT NOT NULL CHECK (length(card_last4) = 4),
    card_brand      TEXT NOT NULL,
    decline_reason  TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
