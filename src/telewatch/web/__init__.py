"""The web UI: templates and static files, served by the API process (no CDN)."""
