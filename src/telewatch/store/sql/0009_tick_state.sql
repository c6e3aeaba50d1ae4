-- streaming tick state: per monitor, metric and detector, the watermark and the context kept between ticks
-- A long-lived scheduler keeps each series' context tail (the last points a detector needs to score
-- new points causally) and its fitted model in memory; the store keeps what a restart needs to resume
-- exactly: the watermark, where the context tail starts, and the model version the state was built with.
CREATE TABLE tick_state (
    monitor     VARCHAR NOT NULL,
    metric_id   INTEGER NOT NULL,
    detector    VARCHAR NOT NULL,
    last_scored TIMESTAMP NOT NULL,      -- watermark: the newest point scored
    tail_start  TIMESTAMP,               -- the oldest point of the context kept for the next tick (NULL: none)
    tail_points INTEGER NOT NULL DEFAULT 0,
    trained_at  TIMESTAMP,               -- the model the state was scored with (NULL: no model yet)
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (monitor, metric_id, detector)
);
-- One row per monitor: a new generation every tick. A process whose memory holds another generation
-- (another process ran the monitor, or the store was restored) rebuilds its state from the store.
CREATE TABLE tick_generations (
    monitor    VARCHAR PRIMARY KEY,
    generation VARCHAR NOT NULL,
    tick_at    TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
