"""Learning without a simulator: a replay buffer filled from a behaviour log, then updates.

    log_transitions(env, behaviour, steps):      the behaviour policy recommends; every vector
                                                 step is stored exactly as the online loop
                                                 (`liveq.train.loop`) stores it
    train_offline(agent, buffer, gradient_steps): agent.update on uniform samples of that
                                                 buffer, nothing else: no env, no acting

The buffer holds `(obs, action, reward, next_obs, terminated)` through the env's replay
codec, with the same validity rule as the online loop: a slot that ended on the previous
step was autoreset (Gymnasium NEXT_STEP), so that step's row is stored but never sampled.
Truncated sessions keep `terminated = False` and still bootstrap. A buffer filled here
is interchangeable with the online loop's, so any learner that updates from
`ReplayBatch`es (DQN, its conservative and behaviour-cloning variants) trains on it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from liveq.buffers.replay import ReplayBuffer, make_codec
from liveq.core.config import ConfigError
from liveq.policies.base import Policy


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
    the env's own (`liveq.replay.make_codec`).
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    codec = make_codec(env, steps * env.num_envs)
    buffer = ReplayBuffer(codec, steps * env.num_envs)
    obs, infos = env.reset(seed=seed)
    encoded = codec.encode(obs, infos)
    prev_done = np.zeros(env.num_envs, dtype=bool)  # slot ended last step: autoreset now
    stored, episodes, reward_sum = 0, 0, 0.0
    for _ in range(steps):
        actions = behaviour.act(obs).actions
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        next_encoded = codec.encode(next_obs, infos)
        valid = ~prev_done
        stored += buffer.add(encoded, actions, rewards, next_encoded, terminated, valid)
        prev_done = (terminated | truncated) & valid
        episodes += int(prev_done.sum())
        reward_sum += float(np.sum(rewards, where=valid))
        obs, encoded = next_obs, next_encoded
    return LoggedTransitions(buffer, stored, episodes, reward_sum)


def train_offline(agent: Any, buffer: ReplayBuffer, gradient_steps: int, *,
                  seed: int | np.random.SeedSequence, batch_size: int | None = None,
                  ) -> dict[str, float]:
    """`gradient_steps` updates of `agent` on uniform samples of `buffer`; never acts.

    `agent` is any learner with `update(ReplayBatch) -> {"loss", "q_mean"}` (e.g.
    `DQNAgent`); `batch_size` defaults to its `config.batch_size`. Returns the mean loss
    and mean Q of the taken actions over the first and the last tenth of the steps.
    """
    if gradient_steps < 1:
        raise ConfigError(f"gradient_steps must be at least 1, got {gradient_steps}")
    if len(buffer) == 0:
        raise ConfigError("train_offline: the replay buffer holds no valid transition")
    size = batch_size or agent.config.batch_size
    rng = np.random.default_rng(seed)
    window = max(1, gradient_steps // 10)
    losses, q_means = np.zeros(gradient_steps), np.zeros(gradient_steps)
    for step in range(gradient_steps):
        stats = agent.update(buffer.sample(size, rng))
        losses[step], q_means[step] = stats["loss"], stats["q_mean"]
    return {"gradient_steps": gradient_steps,
            "loss_first": float(losses[:window].mean()),
            "loss_last": float(losses[-window:].mean()),
            "q_mean_last": float(q_means[-window:].mean())}
