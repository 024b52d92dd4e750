"""forcing/diffusion."""
