-- Text messages beside emails. A message row is now one per event and channel: an event writes
-- at most one email and one text message, however often it is delivered. A sent text message
-- keeps the id the SMS gateway gave it.
ALTER TABLE notifications
    ADD COLUMN channel TEXT NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms'));
ALTER TABLE notifications ADD COLUMN provider_id TEXT;
ALTER TABLE notifications DROP CONSTRAINT notifications_event_id_key;
ALTER TABLE notifications
    ADD CONSTRAINT notifications_event_channel_key UNIQUE (event_id, channel);

-- Each channel's sender looks only at its own due rows.
DROP INDEX notifications_due;
CREATE INDEX notifications_due ON notifications (channel, next_attempt_at) WHERE status = 'pending';

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
    received_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX sms_gateway_messages_recipient ON sms_gateway_messages (recipient, received_at);
