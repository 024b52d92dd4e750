"""Data at scale: video folders -> Wan VAE latent shards, and the shard plumbing (atomic writes,
ranks from torchrun, manifests written when every shard exists) shared with the ODE pairs."""
