"""Training objectives: flow matching, ODE regression, consistency, and the distribution-matching
objectives (DMD, SiD, GAN) behind one interface. No paradigm knowledge lives here.

A distribution-matching objective is built from its config option (``conf/objective/<name>.yaml``,
whose ``_target_`` names the class) by :func:`hydra.utils.instantiate`."""

from .base import DistributionMatching, critic_parameters, input_gradient_loss
from .consistency import consistency_loss, sample_consistency_t, teacher_euler_step
from .discriminator import DiscriminatorHeads, default_tap_blocks
from .dmd import DMD, dmd_gradient
from .fake_score import ScoreDistillation
from .flow_matching import flow_matching_loss, ode_regression_loss
from .gan import GANObjective, finite_difference_penalty, relativistic_loss
from .inputs import LossInputs, NoiseDraw
from .sid import SiD

__all__ = [
    "DMD",
    "DiscriminatorHeads",
    "DistributionMatching",
    "GANObjective",
    "LossInputs",
    "NoiseDraw",
    "ScoreDistillation",
    "SiD",
    "consistency_loss",
    "critic_parameters",
    "default_tap_blocks",
    "dmd_gradient",
    "finite_difference_penalty",
    "flow_matching_loss",
    "input_gradient_loss",
    "ode_regression_loss",
    "relativistic_loss",
    "sample_consistency_t",
    "teacher_euler_step",
]
