"""Incidents: related-metric ranking (window scan), grouping of anomalies, incident types."""
