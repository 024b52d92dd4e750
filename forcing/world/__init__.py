"""forcing/world."""
