-- refsync store, SQLite. Instants are INTEGER microseconds since the Unix epoch (UTC).
-- Keep numbering in step with migrations/postgres.

-- Webhook deliveries as received (raw body and signature headers), deduplicated.
CREATE TABLE received_events (
    id                  INTEGER PRIMARY KEY,
    dedupe_key          TEXT    NOT NULL UNIQUE,
    event_name          TEXT    NOT NULL,
    referral_id         TEXT,
    resource_change_utc INTEGER NOT NULL,
    received_at         INTEGER NOT NULL,
    body                BLOB    NOT NULL,
    signature           TEXT,
    certificate_url     TEXT,
    signature_algorithm TEXT,
    outcome             TEXT    NOT NULL
);
CREATE INDEX received_events_referral ON received_events (referral_id, id);
CREATE INDEX received_events_outcome ON received_events (outcome);

-- The work queue: one row per sync key, coalescing triggers.
CREATE TABLE sync_queue (
    sync_key          TEXT    PRIMARY KEY,
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'dead')),
    due_at            INTEGER NOT NULL,
    generation        INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    first_enqueued_at INTEGER NOT NULL,
    last_enqueued_at  INTEGER NOT NULL,
    last_trigger      TEXT    NOT NULL,
    triggers          TEXT    NOT NULL,
    leased_by         TEXT,
    lease_token       TEXT,
    lease_until       INTEGER,
    last_error        TEXT,
    dead_reason       TEXT,
    dead_at           INTEGER
) WITHOUT ROWID;
CREATE INDEX sync_queue_due ON sync_queue (state, due_at);

-- Referral <-> CRM record links with the base snapshot (a JSON object).
CREATE TABLE sync_links (
    id                  INTEGER PRIMARY KEY,
    referral_id         TEXT    UNIQUE,
    engagement_id       TEXT,
    crm_entity          TEXT,
    crm_id              TEXT,
    base                TEXT    NOT NULL,
    referral_etag       TEXT,
    referral_updated_at INTEGER,
    crm_modified_at     INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    UNIQUE (crm_entity, crm_id),
    CHECK ((crm_entity IS NULL) = (crm_id IS NULL)),
    CHECK (referral_id IS NOT NULL OR crm_id IS NOT NULL)
);
CREATE INDEX sync_links_engagement ON sync_links (engagement_id);

-- Append-only audit trail.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    sync_key    TEXT    NOT NULL,
    referral_id TEXT,
    crm_entity  TEXT,
    crm_id      TEXT,
    kind        TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX audit_log_referral ON audit_log (referral_id, id);
CREATE INDEX audit_log_key ON audit_log (sync_key, id);

CREATE TABLE watermarks (
    name       TEXT    PRIMARY KEY,
    value      INTEGER NOT NULL,
    cursor     TEXT,
    updated_at INTEGER NOT NULL
);

-- Ciphertext only: callers encrypt before storing.
CREATE TABLE secrets (
    name       TEXT    PRIMARY KEY,
    ciphertext BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
);
