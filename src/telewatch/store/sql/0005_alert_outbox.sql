-- alert outbox, delivery attempts, alert state and silences
-- One row per message to one channel. Written in the same transaction as the alert state; delivered
-- later, marked sent only after the channel said yes. status: pending, sending (a process holds it until
-- lease_until), sent, failed (gave up), digest (held for a digest), digested (sent inside a digest).
CREATE SEQUENCE alert_notification_id_seq START 1;
CREATE TABLE alert_notifications (
    id              BIGINT PRIMARY KEY DEFAULT nextval('alert_notification_id_seq'),
    idempotency_key VARCHAR NOT NULL UNIQUE,
    channel         VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,            -- firing, update, repeat, resolved, digest, test
    rule            VARCHAR,
    group_key       VARCHAR NOT NULL,
    alert_keys      VARCHAR NOT NULL DEFAULT '[]',  -- JSON list of the dedup keys it carries
    severity        VARCHAR NOT NULL,
    language        VARCHAR NOT NULL DEFAULT 'en',
    subject         VARCHAR NOT NULL,
    body_html       VARCHAR NOT NULL,            -- Telegram HTML
    body_email      VARCHAR NOT NULL,            -- email HTML (chart as cid:chart)
    body_text       VARCHAR NOT NULL,            -- plain-text alternative
    summary         VARCHAR NOT NULL,            -- one line (digests, photo captions)
    payload         VARCHAR NOT NULL,            -- JSON: structured alerts for webhooks
    chart_png       BLOB,
    status          VARCHAR NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until     TIMESTAMP,
    sent_at         TIMESTAMP,
    last_error      VARCHAR,
    progress        VARCHAR NOT NULL DEFAULT '{}',  -- JSON: steps already done (e.g. Telegram message_id)
    digest_id       BIGINT                       -- the digest notification that carried this one
);

CREATE SEQUENCE alert_attempt_id_seq START 1;
CREATE TABLE alert_delivery_attempts (
    id              BIGINT PRIMARY KEY DEFAULT nextval('alert_attempt_id_seq'),
    notification_id BIGINT NOT NULL,
    channel         VARCHAR NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    ok              BOOLEAN,                      -- NULL: the process died before it knew
    error           VARCHAR,                      -- secrets redacted
    remote_id       VARCHAR
);
CREATE INDEX alert_delivery_attempts_by_notification ON alert_delivery_attempts (notification_id);

-- One row per dedup key: what was last said about it, so a lasting problem is updated, not repeated.
CREATE TABLE alert_state (
    key               VARCHAR PRIMARY KEY,
    rule              VARCHAR,
    monitor           VARCHAR NOT NULL,
    metric            VARCHAR NOT NULL,
    labels            VARCHAR NOT NULL DEFAULT '{}',
    incident_id       BIGINT,
    status            VARCHAR NOT NULL,           -- firing, resolved
    severity          VARCHAR NOT NULL,
    started_at        TIMESTAMP NOT NULL,
    last_seen         TIMESTAMP NOT NULL,
    notified          BOOLEAN NOT NULL DEFAULT false,
    notified_severity VARCHAR,
    last_notified_at  TIMESTAMP,
    silenced_by       BIGINT,
    resolved_at       TIMESTAMP,
    updated_at        TIMESTAMP NOT NULL
);

CREATE SEQUENCE silence_id_seq START 1;
CREATE TABLE silences (
    id          BIGINT PRIMARY KEY DEFAULT nextval('silence_id_seq'),
    matchers    VARCHAR NOT NULL,                 -- JSON list of {name, op, value}
    starts_at   TIMESTAMP NOT NULL,
    ends_at     TIMESTAMP NOT NULL,
    created_by  VARCHAR NOT NULL DEFAULT 'unknown',
    comment     VARCHAR NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    expired_at  TIMESTAMP                          -- set when expired early by hand
);
