"""forcing/encoders."""
