-- An incident holds the anomalies of one monitor's metrics (NULL: metrics no monitor fetches, e.g.
-- an upload or `telewatch detect`), so that two teams' anomalies at the same minute are two incidents.
ALTER TABLE incidents ADD COLUMN monitor VARCHAR;
