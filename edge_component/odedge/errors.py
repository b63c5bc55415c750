"""The device package's own errors: one home, so configuration and counting both raise them without importing
each other."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value cannot be used."""
