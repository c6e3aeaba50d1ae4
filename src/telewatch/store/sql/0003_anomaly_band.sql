-- anomaly band: the expected range around the peak, for alert messages and the UI
ALTER TABLE anomalies ADD COLUMN lower DOUBLE;
ALTER TABLE anomalies ADD COLUMN upper DOUBLE;
