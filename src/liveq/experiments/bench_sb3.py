"""Stable-Baselines3's DQN on the LiveStream env, the reference `liveq bench` compares with.

SB3 is a dev dependency, imported only here. Its DQN cannot mask actions, so it trains on
`LiveStreamEnv(invalid_action="empty")`: a masked choice recommends nothing. Two setups:

* default (`sb3_dqn_kwargs`): as SB3 is usually run, one env in a `DummyVecEnv`, with SB3's
  standard DQN hyper-parameters (`train_freq=4`, `gradient_steps=1`, batch 32, lr 1e-4,
  gamma 0.99, `MultiInputPolicy` with a [64, 64] MLP over the flattened dict); only the
  buffer (sized for the budget) and `learning_starts` (set to liveq's) differ.
* like-for-like (`sb3_like_kwargs`): liveq's DQN settings translated into SB3's units, on
  as many envs as liveq's run, in a `DummyVecEnv`. SB3 counts `train_freq` in calls to
  `env.step` (each steps every env) and `target_update_interval` in env steps (rounded
  down to whole calls); liveq counts `train_freq` in env steps and the target interval in
  gradient steps. What SB3's DQN cannot express (double Q-learning, liveq's
  item-conditioned network, masked exploration) is listed in `UNMATCHED`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from liveq.core.errors import ConfigError, UsageError
from liveq.policies.base import Action, Obs
from liveq.sim.livestream import LiveStreamEnv

UNMATCHED = (
    "network: liveq scores each candidate with one shared head over (viewer code, "
    "candidate features); SB3's MlpPolicy is one flat MLP of the same widths over the "
    "concatenated viewer, candidates and mask, with one output per slot",
    "target: liveq's DQN is double (online argmax, target value); SB3's DQN takes the "
    "target network's max",
    "exploration: liveq draws epsilon per env among live candidates; SB3 draws one coin "
    "per env.step for all envs at once and a random action among all slots (a masked one "
    "recommends nothing)",
    "greedy action: liveq never picks a masked candidate; SB3 may (it then recommends "
    "nothing)",
)


OnStep = Callable[[Any, float], float]  # (model, training seconds so far) -> seconds spent


class SB3Run(NamedTuple):
    model: Any  # stable_baselines3.DQN
    env_steps: int
    updates: int
    seconds: float  # wall time of model.learn() alone, less the seconds `on_step` spent
    settings: dict[str, Any]  # the hyper-parameters SB3 resolved, for the report


def sb3_dqn_kwargs(budget: int, learning_starts: int) -> dict[str, Any]:
    """SB3's standard DQN settings, with the buffer sized for `budget` env steps."""
    return {"train_freq": 4, "gradient_steps": 1, "buffer_size": budget,
            "learning_starts": learning_starts}


def sb3_like_kwargs(dqn: Any, n_envs: int) -> dict[str, Any]:
    """liveq's `DQNConfig` (for a run on `n_envs` envs) as SB3 DQN keyword arguments.

    liveq's `train_freq` must be a whole number of vector steps (as it is in every shipped
    config); its target copy every `target_update_interval` gradient steps becomes the env
    steps those gradient steps take. What SB3's DQN has no setting for (n-step targets, the
    reward head, ...) it runs without; `config_unmatched` names those for the report.
    """
    if dqn.train_freq % n_envs:
        raise ConfigError(f"agent.dqn.train_freq {dqn.train_freq} is not a multiple of "
                          f"env.n_envs {n_envs}: SB3 cannot train at that rate")
    return {
        "batch_size": dqn.batch_size, "learning_rate": dqn.lr, "gamma": dqn.gamma,
        "buffer_size": dqn.buffer_size, "learning_starts": dqn.learning_starts,
        "train_freq": (dqn.train_freq // n_envs, "step"),
        "gradient_steps": dqn.gradient_steps,
        "target_update_interval": round(dqn.target_update_interval * dqn.train_freq
                                        / dqn.gradient_steps),
        "tau": dqn.tau, "max_grad_norm": dqn.max_grad_norm,
        "exploration_initial_eps": dqn.epsilon_start,
        "exploration_final_eps": dqn.epsilon_end,
        "exploration_fraction": dqn.epsilon_fraction,
        "policy_kwargs": {"net_arch": list(dqn.hidden_sizes)},
    }


def config_unmatched(dqn: Any) -> list[str]:
    """The settings of liveq's `DQNConfig` that SB3's DQN cannot take, as report lines: the
    like-for-like SB3 run goes without them (one-step Huber targets, uniform replay, one
    plain Q-network, its online weights)."""
    items = [
        (dqn.n_step != 1, f"n_step: liveq's targets sum {dqn.n_step} rewards before "
                          "bootstrapping; SB3's bootstrap after one"),
        (dqn.reward_head, "reward_head: liveq's Q is an immediate-reward part regressed on "
                          "the reward plus a future part; SB3 fits one Q"),
        (dqn.policy_average > 0, f"policy_average: liveq's greedy policy uses an average "
                                 f"of its weights (rate {dqn.policy_average}); SB3's its "
                                 "online weights"),
        (dqn.dueling, "dueling: liveq's Q has a dueling head; SB3's has none"),
        (dqn.prioritized, "prioritized: liveq replays by priority; SB3 uniformly"),
        (not dqn.huber, "loss: liveq's squared error; SB3's Huber"),
    ]
    return [text for differs, text in items if differs]


def build_sb3(kwargs: dict[str, Any], env_kwargs: dict[str, Any], seed: int,
              n_envs: int = 1) -> Any:
    """An untrained SB3 DQN (`MultiInputPolicy`) on `n_envs` LiveStream envs in a
    `DummyVecEnv`: SB3's `SubprocVecEnv` runs one process per env, which on a few cores
    only adds pickling and pipes to every step of a simulator this cheap."""
    try:
        from stable_baselines3 import DQN
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError:
        raise UsageError("`liveq bench` compares with Stable-Baselines3, which is not "
                         "installed; pip install -e '.[dev]'") from None
    venv = DummyVecEnv([lambda: LiveStreamEnv(**env_kwargs)] * n_envs)
    return DQN("MultiInputPolicy", venv, seed=seed, verbose=0, **kwargs)


def train_sb3(budget: int, kwargs: dict[str, Any], env_kwargs: dict[str, Any], seed: int,
              n_envs: int = 1, on_step: OnStep | None = None) -> SB3Run:
    """Train SB3's DQN for `budget` env steps; only `learn()` is timed.

    `on_step(model, train_seconds)`, if given, runs after every `env.step` of training with
    the training time so far; it returns the seconds it spent, which are left out of the
    training time (periodic evaluation).
    """
    model = build_sb3(kwargs, env_kwargs, seed, n_envs)
    clock = _Clock()
    callback = None if on_step is None else _callback(on_step, clock)
    clock.start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=callback)
    seconds = clock.train_seconds()
    model.get_env().close()
    return SB3Run(model, int(model.num_timesteps), int(model._n_updates), seconds,
                  resolved_settings(model))


class _Clock:
    """Training time: wall time since `start`, less the seconds the callback spent."""

    def __init__(self) -> None:
        self.start, self.spent = time.perf_counter(), 0.0

    def train_seconds(self) -> float:
        return time.perf_counter() - self.start - self.spent


def _callback(on_step: OnStep, clock: _Clock) -> Any:
    """An SB3 callback calling `on_step(model, train_seconds)` after every env.step."""
    from stable_baselines3.common.callbacks import BaseCallback

    class EveryStep(BaseCallback):
        def _on_step(self) -> bool:
            clock.spent += on_step(self.model, clock.train_seconds())
            return True

    return EveryStep()


def resolved_settings(model: Any) -> dict[str, Any]:
    """The hyper-parameters a DQN model actually used, SB3's defaults included."""
    names = ("n_envs", "batch_size", "learning_rate", "gamma", "gradient_steps",
             "buffer_size", "learning_starts", "target_update_interval", "tau",
             "max_grad_norm", "exploration_initial_eps", "exploration_final_eps",
             "exploration_fraction")
    settings = {name: getattr(model, name) for name in names}
    settings["train_freq"] = int(model.train_freq.frequency)
    settings["train_freq_unit"] = model.train_freq.unit.value
    settings["net_arch"] = list(model.policy.net_arch)
    settings["parameters"] = sum(p.numel() for p in model.q_net.parameters())
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
