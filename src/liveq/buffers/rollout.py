"""On-policy rollouts: a few steps of every env, turned into advantages by GAE.

    buffer.add(obs, actions, rewards, terminated, truncated, valid)   once per vector step
    rollout = buffer.finish(values, last_values, gamma, gae_lambda)  after n_steps

Generalised advantage estimation (Schulman et al. 2016), per env, backwards in time:

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   done = terminated | truncated
    return_t = A_t + V(s_t)                                        (the critic's target)

A termination cuts the bootstrap; a truncation (a session stopped by its time limit)
still bootstraps from the final observation, but stops the lambda-sum there: the next
row belongs to another episode. Vector envs autoreset on the step after an episode ends
(Gymnasium NEXT_STEP), so that next row's observation IS the ended episode's final
observation: `V(s_{t+1})` is simply the value of the next row (or of the observation
after the rollout, `last_values`, for the last row), and no final observation needs
storing. The autoreset row itself is not a transition (`valid` False): its advantage is
0 and `finish` leaves it out of the rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from liveq.policies.base import Obs


@dataclass(frozen=True)
class RolloutSchedule:
    """What the on-policy loop needs to know of a learner: rollout length and GAE's
    discounts."""

    n_steps: int  # vector steps per rollout (each collects one row per env)
    gamma: float
    gae_lambda: float


def gae(rewards: np.ndarray, values: np.ndarray, last_values: np.ndarray,
        terminated: np.ndarray, truncated: np.ndarray, valid: np.ndarray, gamma: float,
        gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and value targets `(T, n_envs)` of a rollout (see the module doc).

    `values[t]` is V(obs_t) for each row, `last_values` `(n_envs,)` V of the observation
    after the last row; invalid (autoreset) rows get advantage 0 and target V(obs_t).
    """
    n_steps = len(rewards)
    next_values = np.concatenate([values[1:], last_values[None]], axis=0)
    keep = 1.0 - np.asarray(terminated, dtype=np.float64)
    cont = 1.0 - (np.asarray(terminated) | np.asarray(truncated)).astype(np.float64)
    delta = rewards + gamma * keep * next_values - values
    advantages = np.zeros_like(values, dtype=np.float64)
    carry = np.zeros(values.shape[1])
    for t in reversed(range(n_steps)):
        carry = np.where(valid[t], delta[t] + gamma * gae_lambda * cont[t] * carry, 0.0)
        advantages[t] = carry
    return advantages, advantages + values


class Rollout(NamedTuple):
    """The valid rows of one rollout, flattened over (step, env), ready for updates."""

    obs: Obs  # (rows, ...) array or dict of arrays
    actions: np.ndarray  # (rows,) int64
    advantages: np.ndarray  # (rows,) float64, GAE
    returns: np.ndarray  # (rows,) float64, value targets
    values: np.ndarray  # (rows,) float64, the critic's values when collected


def stack_obs(rows: list[Obs]) -> Obs:
    """`(T, n_envs, ...)` from T batched observations (arrays or dicts of arrays)."""
    if isinstance(rows[0], dict):
        return {key: np.stack([row[key] for row in rows]) for key in rows[0]}
    return np.stack(rows)


def flat_rows(obs: Obs, keep: np.ndarray) -> Obs:
    """The rows `keep` `(T, n_envs)` bool of a `(T, n_envs, ...)` observation, flattened."""
    if isinstance(obs, dict):
        return {key: value[keep] for key, value in obs.items()}
    return obs[keep]


def _copy_obs(obs: Obs) -> Obs:
    if isinstance(obs, dict):
        return {key: np.array(value) for key, value in obs.items()}
    return np.array(obs)


class RolloutBuffer:
    """The vector steps of the rollout being collected (copied: envs may reuse arrays)."""

    FIELDS = ("obs", "actions", "rewards", "terminated", "truncated", "valid")

    def __init__(self) -> None:
        self.steps: dict[str, list[Any]] = {}
        self.clear()

    def clear(self) -> None:
        self.steps = {name: [] for name in self.FIELDS}

    def __len__(self) -> int:
        return len(self.steps["actions"])

    def add(self, obs: Obs, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
            truncated: np.ndarray, valid: np.ndarray) -> None:
        values = (_copy_obs(obs), np.array(actions, dtype=np.int64),
                  np.array(rewards, dtype=np.float64), np.array(terminated, dtype=bool),
                  np.array(truncated, dtype=bool), np.array(valid, dtype=bool))
        for name, value in zip(self.FIELDS, values, strict=True):
            self.steps[name].append(value)

    def observations(self) -> Obs:
        """`(T, n_envs, ...)` observations of the rows so far."""
        return stack_obs(self.steps["obs"])

    def finish(self, values: np.ndarray, last_values: np.ndarray, gamma: float,
               gae_lambda: float) -> Rollout:
        """The valid rows with their advantages; empties the buffer. `values` `(T, n_envs)`
        are the critic's values of `observations()`, `last_values` of the next one."""
        s = {name: np.stack(rows) for name, rows in self.steps.items() if name != "obs"}
        advantages, returns = gae(s["rewards"], values, last_values, s["terminated"],
                                  s["truncated"], s["valid"], gamma, gae_lambda)
        keep = s["valid"]
        rollout = Rollout(flat_rows(self.observations(), keep), s["actions"][keep],
                          advantages[keep], returns[keep], values[keep])
        self.clear()
        return rollout

    def state_dict(self) -> dict[str, Any]:
        return {name: list(rows) for name, rows in self.steps.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = {name: list(state[name]) for name in self.FIELDS}
