-- labelled windows, scores and anomalies
CREATE SEQUENCE label_id_seq START 1;
CREATE TABLE label_windows (
    id          INTEGER PRIMARY KEY DEFAULT nextval('label_id_seq'),
    metric_id   INTEGER NOT NULL,
    start_ts    TIMESTAMP NOT NULL,
    end_ts      TIMESTAMP NOT NULL,
    kind        VARCHAR NOT NULL DEFAULT 'anomaly',
    source      VARCHAR NOT NULL DEFAULT 'user',
    note        VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    UNIQUE (metric_id, start_ts, end_ts, source)
);
CREATE TABLE scores (
    metric_id INTEGER NOT NULL,
    detector  VARCHAR NOT NULL,
    ts        TIMESTAMP NOT NULL,
    score     DOUBLE,
    PRIMARY KEY (metric_id, detector, ts)
);
CREATE SEQUENCE anomaly_id_seq START 1;
CREATE TABLE anomalies (
    id          INTEGER PRIMARY KEY DEFAULT nextval('anomaly_id_seq'),
    metric_id   INTEGER NOT NULL,
    detector    VARCHAR NOT NULL,
    start_ts    TIMESTAMP NOT NULL,
    end_ts      TIMESTAMP NOT NULL,
    peak_ts     TIMESTAMP NOT NULL,
    peak_score  DOUBLE NOT NULL,
    value       DOUBLE,
    expected    DOUBLE,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    UNIQUE (metric_id, detector, start_ts)
);
