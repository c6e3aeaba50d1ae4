"""telewatch: watch IT and telecom telemetry, find what is abnormal, explain it, alert in time."""

__version__ = "0.1.0"
