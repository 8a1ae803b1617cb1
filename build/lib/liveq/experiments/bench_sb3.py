"""Stable-Baselines3's DQN on the LiveStream env, the reference `liveq bench` compares with.

SB3 is a dev dependency, imported only here. Its DQN cannot mask actions, so it trains on
`LiveStreamEnv(invalid_action="empty")`: a masked choice recommends nothing. It runs as SB3
usually does, one env in a `DummyVecEnv`, with SB3's standard DQN hyper-parameters
(`train_freq=4`, `gradient_steps=1`, batch 32, lr 1e-4, gamma 0.99, `MultiInputPolicy`
with a [64, 64] MLP over the flattened dict); only the buffer (sized for the budget) and
`learning_starts` (set to liveq's) differ from SB3's defaults.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from liveq.core.errors import UsageError
from liveq.policies.base import Action, Obs
from liveq.sim.livestream import LiveStreamEnv


class SB3Run(NamedTuple):
    model: Any  # stable_baselines3.DQN
    env_steps: int
    updates: int
    seconds: float  # wall time of model.learn() alone
    settings: dict[str, Any]  # the hyper-parameters SB3 resolved, for the report


def sb3_dqn_kwargs(budget: int, learning_starts: int) -> dict[str, Any]:
    """SB3's standard DQN settings, with the buffer sized for `budget` env steps."""
    return {"train_freq": 4, "gradient_steps": 1, "buffer_size": budget,
            "learning_starts": learning_starts}


def train_sb3(budget: int, learning_starts: int, env_kwargs: dict[str, Any],
              seed: int) -> SB3Run:
    """Train SB3's DQN for `budget` env steps; only `learn()` is timed."""
    try:
        from stable_baselines3 import DQN
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError:
        raise UsageError("`liveq bench` compares with Stable-Baselines3, which is not "
                         "installed; pip install -e '.[dev]'") from None
    venv = DummyVecEnv([lambda: LiveStreamEnv(**env_kwargs)])
    model = DQN("MultiInputPolicy", venv, seed=seed, verbose=0,
                **sb3_dqn_kwargs(budget, learning_starts))
    start = time.perf_counter()
    model.learn(total_timesteps=budget)
    seconds = time.perf_counter() - start
    venv.close()
    return SB3Run(model, int(model.num_timesteps), int(model._n_updates), seconds,
                  resolved_settings(model))


def resolved_settings(model: Any) -> dict[str, Any]:
    """The hyper-parameters a DQN model actually used, SB3's defaults included."""
    names = ("batch_size", "learning_rate", "gamma", "train_freq", "gradient_steps",
             "buffer_size", "learning_starts", "target_update_interval",
             "exploration_fraction", "exploration_final_eps")
    settings = {name: getattr(model, name) for name in names}
    settings["train_freq"] = int(model.train_freq.frequency)
    settings["net_arch"] = list(model.policy.net_arch)
    return settings


class SB3GreedyPolicy:
    """A trained SB3 model as a liveq `Policy` (its greedy action, propensity 1).

    SB3's `predict` takes the batched dict of a liveq vector env as it is. It may choose a
    masked candidate; the env's `invalid_action="empty"` turns that into no recommendation.
    """

    def __init__(self, model: Any):
        self.model = model

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        actions, _ = self.model.predict(obs, deterministic=True)
        actions = np.asarray(actions, dtype=np.int64)  # (n_envs,)
        return Action(actions, np.ones(len(actions)))
