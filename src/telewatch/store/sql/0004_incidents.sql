-- incidents, their ranked metrics and their anomalies
CREATE SEQUENCE incident_id_seq START 1;
CREATE TABLE incidents (
    id              INTEGER PRIMARY KEY DEFAULT nextval('incident_id_seq'),
    start_ts        TIMESTAMP NOT NULL,
    end_ts          TIMESTAMP NOT NULL,
    peak_ts         TIMESTAMP NOT NULL,
    peak_score      DOUBLE NOT NULL,
    peak_metric_id  INTEGER,
    state           VARCHAR NOT NULL DEFAULT 'open',   -- open | resolved
    type            VARCHAR,                            -- a rule name of the incident types, or NULL
    type_title      VARCHAR,
    slice_key       VARCHAR,                            -- the grouping label's value, when known
    title           VARCHAR NOT NULL,
    resolved_at     TIMESTAMP,                          -- set when someone resolved it by hand
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE incident_metrics (
    incident_id INTEGER NOT NULL,
    metric_id   INTEGER NOT NULL,
    rank        INTEGER NOT NULL,
    score       DOUBLE NOT NULL,
    direction   VARCHAR NOT NULL,                       -- up | down | flat
    magnitude   DOUBLE,
    magnitude_kind VARCHAR,                             -- relative | z
    lead_lag    INTEGER,                                -- steps this metric moved before the peak metric
    anomalous   BOOLEAN NOT NULL DEFAULT false,         -- it has an anomaly in the incident
    reason      VARCHAR NOT NULL,
    PRIMARY KEY (incident_id, metric_id)
);
CREATE TABLE incident_anomalies (
    incident_id INTEGER NOT NULL,
    anomaly_id  INTEGER NOT NULL,
    PRIMARY KEY (incident_id, anomaly_id)
);
