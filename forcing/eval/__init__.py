"""forcing/eval."""
