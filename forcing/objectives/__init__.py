"""forcing/objectives."""
