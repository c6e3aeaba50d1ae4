"""The ``telewatch`` command line."""

from telewatch.cli.app import app, main

__all__ = ["app", "main"]
