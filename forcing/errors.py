"""Errors raised before training starts, reported as one line by `run.py`."""


class ConfigError(ValueError):
    """A run that cannot start: bad experiment, incompatible groups, missing artifacts."""
