"""Numbered schema migrations of the embedded store.

Append new migrations to :data:`MIGRATIONS`; never edit one that has shipped. Each runs in its own
transaction and is recorded in ``schema_migrations``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "metrics and points",
        """
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
        """,
    ),
    Migration(
        2,
        "labelled windows, scores and anomalies",
        """
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
        """,
    ),
]
