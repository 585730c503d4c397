-- refsync store, PostgreSQL. Keep numbering in step with migrations/sqlite.

-- Webhook deliveries as received (raw body and signature headers), deduplicated.
CREATE TABLE received_events (
    id                  BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key          TEXT        NOT NULL UNIQUE,
    event_name          TEXT        NOT NULL,
    referral_id         TEXT,
    resource_change_utc TIMESTAMPTZ NOT NULL,
    received_at         TIMESTAMPTZ NOT NULL,
    body                BYTEA       NOT NULL,
    signature           TEXT,
    certificate_url     TEXT,
    signature_algorithm TEXT,
    outcome             TEXT        NOT NULL
);
CREATE INDEX received_events_referral ON received_events (referral_id, id);
CREATE INDEX received_events_outcome ON received_events (outcome);

-- The work queue: one row per sync key, coalescing triggers.
CREATE TABLE sync_queue (
    sync_key          TEXT        PRIMARY KEY,
    state             TEXT        NOT NULL CHECK (state IN ('pending', 'dead')),
    due_at            TIMESTAMPTZ NOT NULL,
    generation        BIGINT      NOT NULL,
    attempts          INTEGER     NOT NULL DEFAULT 0,
    first_enqueued_at TIMESTAMPTZ NOT NULL,
    last_enqueued_at  TIMESTAMPTZ NOT NULL,
    last_trigger      TEXT        NOT NULL,
    triggers          TEXT        NOT NULL,
    leased_by         TEXT,
    lease_token       TEXT,
    lease_until       TIMESTAMPTZ,
    last_error        TEXT,
    dead_reason       TEXT,
    dead_at           TIMESTAMPTZ
);
CREATE INDEX sync_queue_due ON sync_queue (state, due_at);

-- Referral <-> CRM record links with the base snapshot.
CREATE TABLE sync_links (
    id                  BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referral_id         TEXT        UNIQUE,
    engagement_id       TEXT,
    crm_entity          TEXT,
    crm_id              TEXT,
    base                JSONB       NOT NULL,
    referral_etag       TEXT,
    referral_updated_at TIMESTAMPTZ,
    crm_modified_at     TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    version             BIGINT      NOT NULL,
    UNIQUE (crm_entity, crm_id),
    CHECK ((crm_entity IS NULL) = (crm_id IS NULL)),
    CHECK (referral_id IS NOT NULL OR crm_id IS NOT NULL)
);
CREATE INDEX sync_links_engagement ON sync_links (engagement_id);

-- Append-only audit trail.
CREATE TABLE audit_log (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    sync_key    TEXT        NOT NULL,
    referral_id TEXT,
    crm_entity  TEXT,
    crm_id      TEXT,
    kind        TEXT        NOT NULL,
    summary     TEXT        NOT NULL,
    detail      JSONB       NOT NULL
);
CREATE INDEX audit_log_referral ON audit_log (referral_id, id);
CREATE INDEX audit_log_key ON audit_log (sync_key, id);

CREATE TABLE watermarks (
    name       TEXT        PRIMARY KEY,
    value      TIMESTAMPTZ NOT NULL,
    cursor     TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Ciphertext only: callers encrypt before storing.
CREATE TABLE secrets (
    name       TEXT        PRIMARY KEY,
    ciphertext BYTEA       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
