"""Post-rules: stages after a detector (calibration, threshold, alarm filter)."""
