-- compaction (services/compaction.py): per table, the day (UTC midnight) before which every day has been
-- rewritten in (metric, time) order, so one metric's history reads few row groups
CREATE TABLE store_compaction (
    tbl              VARCHAR PRIMARY KEY,
    compacted_until  TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL DEFAULT current_timestamp
);
