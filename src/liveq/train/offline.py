"""Learning without a simulator: a replay buffer filled from a behaviour log, then updates.

    log_transitions(env, behaviour, steps):      the behaviour policy recommends; every vector
                                                 step is stored by the online loop's own
                                                 collection step (`liveq.train.collect`)
    train_offline(agent, buffer, gradient_steps): agent.update on uniform samples of that
                                                 buffer, nothing else: no env, no acting

The buffer holds `(obs, action, reward, next_obs, terminated)` through the env's replay
codec, with the same validity rule as the online loop: a slot that ended on the previous
step was autoreset (Gymnasium NEXT_STEP), so that step's row is stored but never sampled.
Truncated sessions keep `terminated = False` and still bootstrap. A buffer filled here
is interchangeable with the online loop's, so any learner that updates from
`ReplayBatch`es and is registered with `offline=True` (`liveq.train.registry`: dqn,
myopic, cql, bandit, bc, reinforce, and slateq on slate envs) trains on it.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from liveq.buffers.clicks import ClickCodec
from liveq.buffers.replay import ReplayBuffer, make_codec
from liveq.core.config import ConfigError
from liveq.core.errors import NonFiniteError
from liveq.policies.base import Policy
from liveq.train.collect import Collector, ReplayWriter


class LoggedTransitions(NamedTuple):
    """What `log_transitions` returns: the filled buffer and what the behaviour earned."""

    buffer: ReplayBuffer
    stored: int  # valid (sampleable) transitions
    episodes: int  # sessions that ended inside the log
    reward_sum: float  # reward of the valid transitions


def log_transitions(env: gym.vector.VectorEnv, behaviour: Policy, steps: int,
                    seed: int) -> LoggedTransitions:
    """Run `behaviour` for `steps` vector steps of `env` (reset with `seed`) into a buffer.

    The buffer's capacity is `steps * env.num_envs`, so it keeps every row; its codec is
    the env's own (`liveq.buffers.replay.make_codec`), on slate envs with the opened rank
    (`liveq.buffers.clicks.ClickCodec`).
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    codec = make_codec(env, steps * env.num_envs)
    action_shape = tuple(env.single_action_space.shape or ())
    if action_shape:  # slates: also keep the opened rank, which slate learners fit
        codec = ClickCodec(codec)
    buffer = ReplayBuffer(codec, steps * env.num_envs, action_shape)
    collector = Collector(env, ReplayWriter(codec, buffer))
    collector.reset(seed)
    episodes, reward_sum = 0, 0.0
    for _ in range(steps):
        step = collector.step(behaviour)
        episodes += len(step.ended_returns)
        reward_sum += float(np.sum(step.rewards, where=step.valid))
    return LoggedTransitions(buffer, len(buffer), episodes, reward_sum)


def train_offline(agent: Any, buffer: ReplayBuffer, gradient_steps: int, *,
                  seed: int | np.random.SeedSequence, batch_size: int | None = None,
                  ) -> dict[str, float]:
    """`gradient_steps` updates of `agent` on uniform samples of `buffer`; never acts.

    `agent` is any learner with `update(ReplayBatch) -> {statistic: value}` (e.g.
    `DQNAgent`); `batch_size` defaults to its `config.batch_size`. Returns, for every
    statistic `key`, its mean over the first (`key_first`) and last (`key_last`) tenth
    of the steps; a non-finite statistic stops with `NonFiniteError`. A learner with
    `prepare_buffer(buffer)` samples from the view it returns (REINFORCE: sessions with
    their returns).
    """
    if gradient_steps < 1:
        raise ConfigError(f"gradient_steps must be at least 1, got {gradient_steps}")
    if len(buffer) == 0:
        raise ConfigError("train_offline: the replay buffer holds no valid transition")
    prepare = getattr(agent, "prepare_buffer", None)  # learners that need whole sessions
    if prepare is not None:  # (REINFORCE's returns) view the buffer their own way
        buffer = prepare(buffer)
    size = batch_size or agent.config.batch_size
    rng = np.random.default_rng(seed)
    window = max(1, gradient_steps // 10)
    history: dict[str, np.ndarray] = {}
    for step in range(gradient_steps):
        for key, value in agent.update(buffer.sample(size, rng)).items():
            if not math.isfinite(value):
                raise NonFiniteError(f"offline training stopped at gradient step {step + 1}: "
                                     f"{key} = {value}; try a smaller lr or max_grad_norm")
            history.setdefault(key, np.zeros(gradient_steps))[step] = value
    summary: dict[str, float] = {"gradient_steps": gradient_steps}
    for key, values in history.items():
        summary[f"{key}_first"] = float(values[:window].mean())
        summary[f"{key}_last"] = float(values[-window:].mean())
    return summary
