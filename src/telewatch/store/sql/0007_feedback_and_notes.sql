-- feedback on incidents and anomalies, notes on incidents
-- Feedback itself is stored as labelled windows (label_windows, source 'feedback', kind = the
-- feedback) so that `telewatch bench labels` and threshold tuning use it; this table records who
-- said what about which incident or anomaly, and which label windows that wrote.
CREATE SEQUENCE feedback_id_seq START 1;
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY DEFAULT nextval('feedback_id_seq'),
    incident_id INTEGER,
    anomaly_id  INTEGER,
    kind        VARCHAR NOT NULL,            -- confirmed | false_alarm | expected
    start_ts    TIMESTAMP NOT NULL,
    end_ts      TIMESTAMP NOT NULL,
    metric_ids  VARCHAR NOT NULL DEFAULT '[]', -- JSON list of the metrics labelled
    note        VARCHAR,
    author      VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE SEQUENCE incident_note_id_seq START 1;
CREATE TABLE incident_notes (
    id          INTEGER PRIMARY KEY DEFAULT nextval('incident_note_id_seq'),
    incident_id INTEGER NOT NULL,
    text        VARCHAR NOT NULL,
    author      VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
