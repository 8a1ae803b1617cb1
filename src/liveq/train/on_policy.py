"""The on-policy loop kind: collect a rollout with the current policy, learn, discard it.

    every vector step:   buffer.add(step)                         (liveq.buffers.rollout)
    every n_steps:       V = agent.values(rollout observations and the one after)
                         rollout = GAE advantages and value targets of the valid rows
                         agent.update(rollout)                    (e.g. liveq.algos.ppo)

The learner gives its `rollout_schedule` (`RolloutSchedule`: n_steps, gamma,
gae_lambda) and `values(obs)`; the values are computed once, after the rollout and
before any update, so they are the critic's values under the policy that collected it.
Terminations cut the bootstrap, truncations bootstrap from the final observation (see
`liveq.buffers.rollout`). The rollout being collected is part of the checkpoint, so a
resumed run continues it where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from liveq.buffers.rollout import RolloutBuffer
from liveq.core.config import ConfigError
from liveq.train.collect import Step


class OnPolicyLearning:
    """On-policy: n_steps vector steps into a rollout, then one `agent.update(rollout)`."""

    writer = None

    def __init__(self, agent: Any, env: Any, seed: np.random.SeedSequence,
                 total_env_steps: int):
        missing = [name for name in ("rollout_schedule", "values")
                   if not hasattr(agent, name)]
        if missing:
            raise ConfigError(f"{type(agent).__name__} cannot train on the on_policy loop: it "
                              f"has no {' or '.join(missing)} (on-policy learners such as "
                              "ppo and a2c do)")
        self.agent, self.schedule = agent, agent.rollout_schedule
        self.buffer = RolloutBuffer()

    def learn(self, step: Step, before: int, after: int) -> Iterator[dict[str, float]]:
        self.buffer.add(step.obs, step.actions, step.rewards, step.terminated, step.truncated,
                        step.valid)
        if len(self.buffer) < self.schedule.n_steps:
            return
        if not np.any(self.buffer.steps["valid"]):  # every row an autoreset: nothing to learn
            self.buffer.clear()
            return
        n_steps, n_envs = len(self.buffer), len(step.actions)
        values = self.agent.values(_flatten(self.buffer.observations())).reshape(n_steps,
                                                                                  n_envs)
        last_values = self.agent.values(step.next_obs)
        rollout = self.buffer.finish(values, last_values, self.schedule.gamma,
                                     self.schedule.gae_lambda)
        yield self.agent.update(rollout)

    def log_fields(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"rollout": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["rollout"])


def _flatten(obs: Any) -> Any:
    """`(T * n_envs, ...)` rows of a `(T, n_envs, ...)` observation."""
    if isinstance(obs, dict):
        return {key: value.reshape(-1, *value.shape[2:]) for key, value in obs.items()}
    return obs.reshape(-1, *obs.shape[2:])
