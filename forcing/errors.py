"""Errors reported as one line by `run.py`: a run that cannot start, and a run that diverged."""


class ConfigError(ValueError):
    """A run that cannot start: bad experiment, incompatible groups, missing artifacts (exit code 2)."""


class DivergedError(RuntimeError):
    """A run stopped by a non-finite loss or gradient, before the step was checkpointed (exit code 3)."""
