"""Forcing: autoregressive video diffusion paradigms on one Wan2.1 backbone."""
