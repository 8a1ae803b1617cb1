"""Simulators. Importing this package registers liveq's Gymnasium envs."""

from __future__ import annotations

import gymnasium as gym

from liveq.sim.chain import register_chain
from liveq.sim.config import LiveStreamConfig, RewardWeights, StreamerTraits, ViewerTraits
from liveq.sim.core import InvalidActionError, LiveStreamCore
from liveq.sim.linear_bandit import register_linear_bandit
from liveq.sim.liveroom import register_liveroom
from liveq.sim.shop import register_ecommerce


def register_envs() -> None:
    """Register `liveq/LiveStream-v0` and `liveq/AdPlacement-v0` (with their batched vector
    entry points), the chain and the linear bandit."""
    if "liveq/LiveStream-v0" not in gym.registry:
        gym.register(
            "liveq/LiveStream-v0",
            entry_point="liveq.sim.livestream:LiveStreamEnv",
            vector_entry_point="liveq.sim.livestream:LiveStreamVectorEnv",
        )
    if "liveq/AdPlacement-v0" not in gym.registry:
        gym.register(
            "liveq/AdPlacement-v0",
            entry_point="liveq.sim.adplacement:AdPlacementEnv",
            vector_entry_point="liveq.sim.adplacement:AdPlacementVectorEnv",
        )
    register_chain()
    register_linear_bandit()
    register_ecommerce()
    register_liveroom()


register_envs()

__all__ = ["InvalidActionError", "LiveStreamConfig", "LiveStreamCore", "RewardWeights",
           "StreamerTraits", "ViewerTraits", "register_envs"]
