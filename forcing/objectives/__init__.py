"""Training objectives: flow matching, ODE regression, consistency, and the distribution-matching
objectives (DMD, SiD, GAN) behind one interface. No paradigm knowledge lives here."""

from .base import DistributionMatching, critic_parameters, input_gradient_loss
from .consistency import consistency_loss, sample_consistency_t, teacher_euler_step
from .discriminator import DiscriminatorHeads, default_tap_blocks
from .dmd import DMD, dmd_gradient
from .fake_score import ScoreDistillation
from .flow_matching import flow_matching_loss, ode_regression_loss
from .gan import GANObjective, finite_difference_penalty, relativistic_loss
from .registry import OBJECTIVES, build_objective, register_objective
from .sid import SiD

__all__ = [
    "DMD",
    "OBJECTIVES",
    "DiscriminatorHeads",
    "DistributionMatching",
    "GANObjective",
    "ScoreDistillation",
    "SiD",
    "build_objective",
    "consistency_loss",
    "critic_parameters",
    "default_tap_blocks",
    "dmd_gradient",
    "finite_difference_penalty",
    "flow_matching_loss",
    "input_gradient_loss",
    "ode_regression_loss",
    "register_objective",
    "relativistic_loss",
    "sample_consistency_t",
    "teacher_euler_step",
]
