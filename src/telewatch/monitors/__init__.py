"""Monitors: YAML declarations of what to watch, how and how often (see docs/monitors.md)."""
