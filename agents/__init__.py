"""Agents: the recurrent policy network, observation/value normalisers and the PPO maths.

Depends on torch and numpy only (and games/ layouts, imported lazily); never on arena/.
"""

from agents.normalize import RunningMeanStd, ValueNorm
from agents.policy import (EntityEncoder, EntityLayout, MLPEncoder, RecurrentPolicy, mask_logits,
                           masked_categorical)
from agents.ppo import chunk_minibatches, compute_gae, explained_variance, masked_mean, ppo_loss

__all__ = [
    "EntityEncoder", "EntityLayout", "MLPEncoder", "RecurrentPolicy", "RunningMeanStd", "ValueNorm",
    "chunk_minibatches", "compute_gae", "explained_variance", "mask_logits", "masked_categorical",
    "masked_mean", "ppo_loss",
]
