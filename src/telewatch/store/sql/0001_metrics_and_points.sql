-- metrics and points
CREATE SEQUENCE metric_id_seq START 1;
CREATE TABLE metrics (
    id          INTEGER PRIMARY KEY DEFAULT nextval('metric_id_seq'),
    name        VARCHAR NOT NULL,
    labels      VARCHAR NOT NULL DEFAULT '{}',   -- canonical JSON: sorted keys, the slice
    unit        VARCHAR,
    owner       VARCHAR,
    grp         VARCHAR,                         -- the metric's group
    description VARCHAR,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    UNIQUE (name, labels)
);
-- ts is UTC, stored naive; value NULL = the source said "missing" (an empty cell).
CREATE TABLE points (
    metric_id INTEGER NOT NULL,
    ts        TIMESTAMP NOT NULL,
    value     DOUBLE,
    PRIMARY KEY (metric_id, ts)
);
CREATE SEQUENCE ingest_id_seq START 1;
CREATE TABLE ingests (
    id          INTEGER PRIMARY KEY DEFAULT nextval('ingest_id_seq'),
    source      VARCHAR NOT NULL,
    sha256      VARCHAR,
    metrics     INTEGER NOT NULL,
    points      BIGINT NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
