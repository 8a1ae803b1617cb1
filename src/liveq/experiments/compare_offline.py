"""Offline-only learners in `liveq compare`: learn from a simulated behaviour log, then play.

`bc` and `reinforce` (registered with no loop kind) never act while they learn, so
`liveq compare` gives them what they would get in production: a log. The behaviour
policy (`--behaviour`, a baseline of the env, optionally with uniform exploration:
`popular:0.3`) recommends on the run config's env for the run's `total_env_steps`;
every transition goes into a replay buffer with the exact probability the behaviour
gave each logged item (REINFORCE's off-policy correction reads it when its config says
`behaviour: logged`; with the default `learnt` it fits its own beta head). The learner
then takes as many gradient steps as the config's online schedule would
(`(total_env_steps - learning_starts) / train_freq * gradient_steps`), and the result is
written as a run folder (`config.yaml`, `meta.json`, `offline.json`, checkpoints `best`
and `latest`) that `liveq eval` and compare's own evaluation read like any other run.
The behaviour itself is one more row of the table, so the learner's lead over what
produced its data is in plain view.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from liveq.buffers.replay import ReplayBuffer
from liveq.core.config import save_yaml
from liveq.core.report import save_json
from liveq.policies.base import Policy
from liveq.policies.baselines import policy_and_epsilon
from liveq.policies.explore import EpsilonGreedy
from liveq.sim.vector import make_vec_env
from liveq.train.checkpoint import save_checkpoint
from liveq.train.config import RunConfig, run_config_dict
from liveq.train.offline import log_transitions, train_offline
from liveq.train.registry import build_learner
from liveq.train.run import versions

PROPENSITY_CHUNK = 4096  # buffer rows whose behaviour distribution is computed at once
DEFAULT_SCHEDULE = {"learning_starts": 1000, "train_freq": 4, "gradient_steps": 1}


def parse_behaviour(text: str, table: dict[str, Any]) -> tuple[str, float]:
    """`"popular:0.3"` -> ("popular", 0.3); the name must be one of the env's baselines."""
    return policy_and_epsilon(text, table, "--behaviour")


def behaviour_policy(text: str, table: dict[str, Any], env: Any, seed: int) -> Policy:
    """The behaviour baseline acting on `env`, with uniform exploration when epsilon > 0."""
    name, epsilon = parse_behaviour(text, table)
    base = table[name](env, seed)
    return base if epsilon == 0 else EpsilonGreedy(base, epsilon, np.random.default_rng(seed))


def logged_propensities(buffer: ReplayBuffer, behaviour: Policy) -> np.ndarray:
    """The behaviour's probability of each logged item `(rows, slate_size)`: for slates,
    its probability at each rank averaged over the ranks (a distribution over items).
    The behaviours here read only the observation, so re-asking them is exact."""
    out = np.zeros((buffer.size, behaviour.slate_size))
    for start in range(0, buffer.size, PROPENSITY_CHUNK):
        rows = np.arange(start, min(start + PROPENSITY_CHUNK, buffer.size))
        obs = buffer.codec.decode({k: v[rows] for k, v in buffer.obs.items()})
        probs = behaviour.probabilities(obs)  # (n, K) or (n, L, K)
        per_item = probs if probs.ndim == 2 else probs.mean(axis=1)
        slates = buffer.actions[rows].reshape(len(rows), -1)
        out[rows] = np.take_along_axis(per_item, slates, axis=1)
    return out


def gradient_budget(config: RunConfig) -> int:
    """The gradient steps the config's online schedule (its own agent's: DQN in the
    shipped configs) would take over its env steps; DQN's defaults where that agent has
    no replay schedule."""
    settings = config.agent.settings
    get = lambda key: getattr(settings, key, DEFAULT_SCHEDULE[key])  # noqa: E731
    steps = config.train.total_env_steps - get("learning_starts")
    return max(1, steps // get("train_freq") * get("gradient_steps"))


def train_offline_run(config: RunConfig, name: str, out: Path, behaviour: str,
                      table: dict[str, Any], gradient_steps: int) -> dict[str, Any]:
    """Log `behaviour` on `config`'s env, train learner `name` (whose settings are
    `config.agent.settings`) for `gradient_steps` on that log alone, and write the run
    folder `out`."""
    seed_seq = np.random.SeedSequence(config.seed)
    log_seq, agent_seq, sample_seq = seed_seq.spawn(3)
    log_seed = int(log_seq.generate_state(1)[0])
    env = make_vec_env(config.env.id, config.env.n_envs, config.env.kwargs)
    try:
        policy = behaviour_policy(behaviour, table, env, log_seed)
        steps = max(1, config.train.total_env_steps // config.env.n_envs)
        logged = log_transitions(env, policy, steps, log_seed)
        learner = build_learner(name, env.single_observation_space, env.single_action_space,
                                config.agent.settings, agent_seq)
    finally:
        env.close()
    buffer: Any = logged.buffer
    prepare = getattr(learner, "prepare_buffer", None)
    if prepare is not None:
        buffer = prepare(buffer, logged_propensities(logged.buffer, policy))
    stats = train_offline(learner, buffer, gradient_steps, seed=sample_seq)
    summary = {"behaviour": behaviour, "env_steps": steps * config.env.n_envs,
               "stored_transitions": logged.stored, "behaviour_sessions": logged.episodes,
               "behaviour_reward_sum": logged.reward_sum, **stats}
    _write_run(out, config, learner, summary)
    return summary


def _write_run(out: Path, config: RunConfig, learner: Any, summary: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = run_config_dict(copy.deepcopy(config))
    save_yaml(data, out / "config.yaml")
    save_json({"seed": config.seed, "versions": versions(), "learned_offline": True},
              out / "meta.json")
    save_json(summary, out / "offline.json")
    state = {"config": data, "agent": learner.state_dict()}
    save_checkpoint(out / "checkpoints" / "best.pt", {"kind": "best", **state})
    save_checkpoint(out / "checkpoints" / "latest.pt", {"kind": "latest", **state})
