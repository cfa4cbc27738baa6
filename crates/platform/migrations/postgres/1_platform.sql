-- The platform's tables, present in every service's schema.

-- Events waiting to be published, written in the same transaction as the change they describe.
CREATE TABLE IF NOT EXISTS nubo_outbox (
    seq          BIGSERIAL PRIMARY KEY,
    id           UUID NOT NULL UNIQUE,
    subject      TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS nubo_outbox_unpublished ON nubo_outbox (seq) WHERE published_at IS NULL;

-- Events this service has handled, recorded in the handler's transaction: the record that makes
-- at-least-once delivery handled-at-most-once in effect.
CREATE TABLE IF NOT EXISTS nubo_processed_events (
    consumer     TEXT NOT NULL,
    event_id     UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- Events a consumer gave up on after its bounded retries, kept for an operator.
CREATE TABLE IF NOT EXISTS nubo_dead_letters (
    consumer   TEXT NOT NULL,
    event_id   UUID NOT NULL,
    subject    TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    attempts   BIGINT NOT NULL,
    error      TEXT NOT NULL,
    failed_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
