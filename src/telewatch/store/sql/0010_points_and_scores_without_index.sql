-- points and scores without a primary-key index
-- A PRIMARY KEY on (metric_id, ts) makes DuckDB keep an ART index over every point ever stored: the
-- first write after opening the store loads it whole (4.6 GiB at 10,000 metrics x 3 days), every
-- write inserts into it and every checkpoint writes it again, so a tick's cost grew with the history
-- kept (1.8 s at one day, 4.3 s at three). Writers now keep (metric_id, ts) and
-- (metric_id, detector, ts) unique themselves (telewatch.store.repo.replace_points / replace_scores:
-- the rows already stored in the written time range are deleted first, a scan the zone maps prune to
-- a few row groups). The rows keep their physical order.
CREATE TABLE points_unindexed (
    metric_id INTEGER NOT NULL,
    ts        TIMESTAMP NOT NULL,
    value     DOUBLE
);
INSERT INTO points_unindexed SELECT metric_id, ts, value FROM points;
DROP TABLE points;
ALTER TABLE points_unindexed RENAME TO points;
CREATE TABLE scores_unindexed (
    metric_id INTEGER NOT NULL,
    detector  VARCHAR NOT NULL,
    ts        TIMESTAMP NOT NULL,
    score     DOUBLE
);
INSERT INTO scores_unindexed SELECT metric_id, detector, ts, score FROM scores;
DROP TABLE scores;
ALTER TABLE scores_unindexed RENAME TO scores;
