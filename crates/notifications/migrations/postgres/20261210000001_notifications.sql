-- What notifications knows of an order: enough to address an email about it. Filled from the
-- order events, so a PaymentRefunded (which names only the order) can reach its customer.
CREATE TABLE notification_orders (
    order_id      UUID PRIMARY KEY,
    user_id       UUID NOT NULL,
    email         TEXT NOT NULL,
    total_minor   BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    learned_at    TIMESTAMPTZ NOT NULL
);

-- One row per email, under the id of the event it answers: a redelivered event cannot make a
-- second one. `next_attempt_at` is when the mail outbox may next try a `pending` row; a replica
-- claims the row by moving it ahead by a lease, so two replicas never send it at once.
CREATE TABLE notifications (
    id               UUID PRIMARY KEY,
    event_id         UUID NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('order_confirmed', 'order_cancelled', 'payment_refunded')),
    order_id         UUID NOT NULL,
    user_id          UUID NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('recorded', 'pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       TEXT,
    next_attempt_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ
);

CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_order ON notifications (order_id);
