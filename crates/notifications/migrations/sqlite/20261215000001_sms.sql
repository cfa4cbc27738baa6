-- Text messages beside emails. A message row is now one per event and channel: an event writes
-- at most one email and one text message, however often it is delivered. A sent text message
-- keeps the id the SMS gateway gave it. SQLite cannot drop the old UNIQUE (event_id), so the
-- table is rebuilt, keeping every row (all of them emails).
CREATE TABLE notifications_by_channel (
    id               BLOB PRIMARY KEY,
    event_id         BLOB NOT NULL,
    channel          TEXT NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms')),
    kind             TEXT NOT NULL CHECK (kind IN ('order_confirmed', 'order_cancelled', 'payment_refunded')),
    order_id         BLOB NOT NULL,
    user_id          BLOB NOT NULL,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('recorded', 'pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error       TEXT,
    next_attempt_at  TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    provider_id      TEXT,
    UNIQUE (event_id, channel)
);

INSERT INTO notifications_by_channel
    (id, event_id, channel, kind, order_id, user_id, recipient, subject, body, status, attempts,
     last_error, next_attempt_at, created_at, sent_at)
SELECT id, event_id, 'email', kind, order_id, user_id, recipient, subject, body, status, attempts,
       last_error, next_attempt_at, created_at, sent_at
FROM notifications;

DROP TABLE notifications;
ALTER TABLE notifications_by_channel RENAME TO notifications;

-- Each channel's sender looks only at its own due rows.
CREATE INDEX notifications_due ON notifications (channel, next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_order ON notifications (order_id);

-- The number the customer quotes, for the emails that name the order (a refund's); empty for
-- orders whose events had none.
ALTER TABLE notification_orders ADD COLUMN number TEXT NOT NULL DEFAULT '';

-- The far side: what the simulated SMS gateway received, as a provider would keep it. One row
-- per idempotency key (the sender's message id), so a message sent twice is received once.
CREATE TABLE sms_gateway_messages (
    idempotency_key  TEXT PRIMARY KEY,
    provider_id      TEXT NOT NULL UNIQUE,
    recipient        TEXT NOT NULL,
    body             TEXT NOT NULL,
    received_at      TEXT NOT NULL
);

CREATE INDEX sms_gateway_messages_recipient ON sms_gateway_messages (recipient, received_at);
