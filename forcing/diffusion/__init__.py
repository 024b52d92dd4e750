"""Flow matching on Wan's rectified-flow path: noising, shift, grids, CFG (the samplers that use them
are in `forcing.rollout`)."""

from .flow import (
    NUM_TRAIN_TIMESTEPS,
    add_noise,
    eps_from_velocity,
    expand_sigma,
    sigma_from_t,
    t_from_sigma,
    velocity_from_x0,
    velocity_target,
    x0_from_velocity,
)
from .guidance import Conditioning, Denoiser, cfg, self_forcing_scale_to_w
from .schedule import (
    euler_timesteps,
    few_step_timesteps,
    sample_block_t,
    sample_training_t,
    shift_sigma,
    shift_t,
    training_grid,
    wan_timestep_weight,
)

__all__ = [
    "NUM_TRAIN_TIMESTEPS",
    "Conditioning",
    "Denoiser",
    "add_noise",
    "cfg",
    "eps_from_velocity",
    "euler_timesteps",
    "expand_sigma",
    "few_step_timesteps",
    "sample_block_t",
    "sample_training_t",
    "self_forcing_scale_to_w",
    "shift_sigma",
    "shift_t",
    "sigma_from_t",
    "t_from_sigma",
    "training_grid",
    "velocity_from_x0",
    "velocity_target",
    "wan_timestep_weight",
    "x0_from_velocity",
]
