"""forcing/models."""
