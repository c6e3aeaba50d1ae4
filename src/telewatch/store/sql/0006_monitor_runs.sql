-- monitor state, runs, models and leases
-- One row per monitor: the last tick that completed, the failure streak and when to retry, and the
-- source's cursor (last point seen per series, log offsets, SNMP counters) as JSON.
CREATE TABLE monitor_state (
    monitor         VARCHAR PRIMARY KEY,
    fingerprint     VARCHAR,                 -- hash of the settings that shape stored data
    last_run_at     TIMESTAMP,               -- the tick ("now") of the last successful run
    last_attempt_at TIMESTAMP,
    status          VARCHAR NOT NULL DEFAULT 'never',   -- never | ok | error
    error           VARCHAR,                 -- the last error, secrets redacted
    attempts        INTEGER NOT NULL DEFAULT 0,         -- consecutive failures
    next_retry_at   TIMESTAMP,
    cursor          VARCHAR NOT NULL DEFAULT '{}',
    updated_at      TIMESTAMP
);
-- Per monitor and series: the newest point fetched and the newest point scored.
CREATE TABLE monitor_series (
    monitor     VARCHAR NOT NULL,
    series_key  VARCHAR NOT NULL,
    metric_id   INTEGER NOT NULL,
    last_point  TIMESTAMP,
    last_scored TIMESTAMP,
    PRIMARY KEY (monitor, series_key)
);
CREATE SEQUENCE monitor_run_id_seq START 1;
CREATE TABLE monitor_runs (
    id          BIGINT PRIMARY KEY DEFAULT nextval('monitor_run_id_seq'),
    monitor     VARCHAR NOT NULL,
    tick_at     TIMESTAMP NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status      VARCHAR NOT NULL,            -- ok | error | skipped
    attempt     INTEGER NOT NULL DEFAULT 1,
    points      INTEGER NOT NULL DEFAULT 0,
    scored      INTEGER NOT NULL DEFAULT 0,
    anomalies   INTEGER NOT NULL DEFAULT 0,
    alerts      INTEGER NOT NULL DEFAULT 0,
    error       VARCHAR
);
-- A fitted detector per monitor, metric and detector type, refitted on the monitor's train schedule.
CREATE TABLE monitor_models (
    monitor     VARCHAR NOT NULL,
    metric_id   INTEGER NOT NULL,
    detector    VARCHAR NOT NULL,
    params      VARCHAR NOT NULL DEFAULT '{}',
    trained_at  TIMESTAMP NOT NULL,
    train_start TIMESTAMP,
    train_end   TIMESTAMP,
    points      INTEGER NOT NULL DEFAULT 0,
    model       BLOB NOT NULL,
    PRIMARY KEY (monitor, metric_id, detector)
);
-- Runs of one monitor never overlap: a run holds the lease until it finishes or the lease expires.
CREATE TABLE monitor_leases (
    monitor     VARCHAR PRIMARY KEY,
    holder      VARCHAR NOT NULL,
    acquired_at TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
