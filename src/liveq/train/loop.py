"""The training loop: collect -> learn, with evaluation, checkpoints and logs.

    obs = env.reset()
    repeat until total_env_steps (or early stopping):
        epsilon = agent.set_progress(env_steps, total)
        step = collector.step(agent)                      act, env.step (liveq.train.collect)
        learn from the step, by the algorithm's loop kind (liveq.train.registry):
          off_policy  store it in replay; every train_freq env steps after
                      learning_starts, gradient_steps agent.update(replay sample)
                      (prioritized replay: then write agent.td_errors back as priorities)
          online      agent.update(this step's valid transitions)
          on_policy   add it to the rollout; every n_steps vector steps, GAE advantages
                      and agent.update(rollout)   (liveq.train.on_policy)
        every log_every / eval_every / checkpoint_every env steps: log / evaluate / save

The statistics each `update` returns are averaged between two logs and written as
`train/<key>`; the loop does not know what they mean. A non-finite statistic or weight
stops the run with `NonFiniteError` naming the env step, before anything is saved.
Step counts are environment steps summed over envs.

Exact resume: `checkpoints/latest.pt` holds the agent (networks, optimizer, RNG), the
replay with its codec (prioritized: with its sum-tree and largest priority), the loop
counters and RNG, the current observation, and the env state when the vector env offers
`get_state()`/`set_state()`. With such an env a resumed run ends with bitwise the same
weights as an uninterrupted one. Envs without `get_state` (e.g. Gymnasium's CartPole)
resume from freshly reset episodes: training goes on from the same agent and replay,
but no longer matches an uninterrupted run exactly.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from liveq.buffers.prioritized import make_replay_buffer, priority_beta
from liveq.buffers.replay import make_codec
from liveq.core.config import ConfigError
from liveq.core.errors import CheckpointError, NonFiniteError
from liveq.sim.vector import make_vec_env
from liveq.train.checkpoint import (
    load_checkpoint,
    non_finite_entries,
    require_parts,
    save_checkpoint,
)
from liveq.train.collect import Collector, ReplayWriter, Step
from liveq.train.config import RunConfig, run_config_dict, saved_config_changes
from liveq.train.evaluate import Evaluate, make_gym_evaluator
from liveq.train.on_policy import OnPolicyLearning
from liveq.train.registry import algorithm, build_learner
from liveq.train.run import RunDir

RECENT_EPISODES = 100  # episodes averaged for the logged training return
LATEST_PARTS = ("config", "agent", "learning", "loop", "collector")


def build_agent(config: RunConfig, obs_space: Any, action_space: Any,
                seed: int | np.random.SeedSequence) -> Any:
    """The learner named by `config.agent.name` for these (single-env) spaces."""
    return build_learner(config.agent.name, obs_space, action_space, config.agent.settings,
                         seed)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch CPU threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]; never when every == 0."""
    return every > 0 and after // every > before // every


class ReplayLearning:
    """Off-policy: every step goes to replay; rounds of updates on samples drawn uniformly
    or, for a prioritized schedule, by priority, written back after each update."""

    def __init__(self, agent: Any, env: Any, seed: np.random.SeedSequence,
                 total_env_steps: int):
        self.agent, self.schedule = agent, agent.replay_schedule
        codec = make_codec(env, self.schedule.buffer_size)
        codec = getattr(agent, "replay_codec", lambda inner: inner)(codec)  # e.g. with clicks
        self.replay = make_replay_buffer(codec, self.schedule,
                                         tuple(env.single_action_space.shape or ()))
        self.writer = ReplayWriter(self.replay.codec, self.replay)
        self.sample_rng = np.random.default_rng(seed)
        self.total_env_steps = total_env_steps

    def learn(self, step: Step, before: int, after: int) -> Iterator[dict[str, float]]:
        c = self.schedule
        if after < c.learning_starts:
            return
        for _ in range((after // c.train_freq - before // c.train_freq) * c.gradient_steps):
            if c.priorities is None:
                yield self.agent.update(self.replay.sample(c.batch_size, self.sample_rng))
                continue
            beta = priority_beta(c.priorities, after, self.total_env_steps)
            batch = self.replay.sample(c.batch_size, self.sample_rng, beta=beta)
            stats = self.agent.update(batch)
            self.replay.update_priorities(batch.indices, self.agent.td_errors)
            yield {**stats, "priority_beta": beta}

    def log_fields(self) -> dict[str, float]:
        return {"train/replay_size": len(self.replay)}

    def state_dict(self) -> dict[str, Any]:
        return {"replay": self.replay.state_dict(),
                "sample_rng": self.sample_rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replay.load_state_dict(state["replay"])
        self.sample_rng.bit_generator.state = state["sample_rng"]


class StepLearning:
    """Online: one update from the valid transitions of each vector step, no replay."""

    writer = None

    def __init__(self, agent: Any, env: Any, seed: np.random.SeedSequence,
                 total_env_steps: int):
        self.agent = agent

    def learn(self, step: Step, before: int, after: int) -> Iterator[dict[str, float]]:
        if step.valid.any():
            yield self.agent.update(step.transitions())

    def log_fields(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


LEARNING = {"off_policy": ReplayLearning, "online": StepLearning,
            "on_policy": OnPolicyLearning}


@dataclass
class LoopState:
    """Counters and running statistics of the loop (all part of the checkpoint)."""

    env_steps: int = 0
    episodes: int = 0
    recent_returns: list[float] = field(default_factory=list)
    best_return: float = float("-inf")
    evals_since_best: int = 0
    last_eval_step: int = -1
    last_eval: dict[str, float] = field(default_factory=dict)
    stop_reason: str = ""
    stat_sums: dict[str, float] = field(default_factory=dict)  # update statistics since log
    n_updates: int = 0  # updates since the last log


class Trainer:
    """One run: env, agent, its way of learning and the run folder, stepped by `run()`."""

    def __init__(self, config: RunConfig, out_dir: str | Path, *, resume: bool,
                 evaluate: Evaluate | None):
        self.config = config
        loop = algorithm(config.agent.name).loop
        if loop is None:
            raise ConfigError(f"agent.name: {config.agent.name} learns only from a logged "
                              "buffer (liveq.train.offline), not by acting in an env")
        env_seq, agent_seq, sample_seq, eval_seq = np.random.SeedSequence(config.seed).spawn(4)
        self.env_seed = int(env_seq.generate_state(1)[0])
        self.eval_seed = int(eval_seq.generate_state(1)[0])
        self.env = make_vec_env(config.env.id, config.env.n_envs, config.env.kwargs)
        self.agent = build_agent(config, self.env.single_observation_space,
                                 self.env.single_action_space, agent_seq)
        self.learning = LEARNING[loop](self.agent, self.env, sample_seq,
                                       config.train.total_env_steps)
        self.collector = Collector(self.env, self.learning.writer)
        self.evaluate = evaluate or make_gym_evaluator(config.env.id, config.env.kwargs)
        self.state = LoopState()
        self.epsilon = float("nan")
        checkpoint = _read_latest(out_dir, config) if resume else None
        resume_step = None if checkpoint is None else int(checkpoint["loop"]["env_steps"])
        self.run_dir = RunDir(out_dir, config, resume_step=resume_step)
        if checkpoint is None:
            self.collector.reset(self.env_seed)
        else:
            self._restore(checkpoint)
        self.started = time.perf_counter()
        self.last_log = (self.started, self.state.env_steps)

    def run(self) -> dict[str, Any]:
        """Train to the end of the schedule or early stop; returns the summary."""
        total = self.config.train.total_env_steps
        bar = tqdm(total=total, initial=self.state.env_steps, unit="step", dynamic_ncols=True,
                   disable=not self.config.train.progress)
        try:
            while self.state.env_steps < total and not self.state.stop_reason:
                before = self.state.env_steps
                step = self._collect()
                self._learn(step, before)
                self._after_step(before, bar)
            return self._finish()
        finally:
            bar.close()
            self.run_dir.close()
            self.env.close()

    def _collect(self) -> Step:
        s = self.state
        self.epsilon = self.agent.set_progress(s.env_steps, self.config.train.total_env_steps)
        step = self.collector.step(self.agent)
        if len(step.ended_returns):
            s.recent_returns = (s.recent_returns
                                + step.ended_returns.tolist())[-RECENT_EPISODES:]
            s.episodes += len(step.ended_returns)
        s.env_steps += self.config.env.n_envs
        return step

    def _learn(self, step: Step, before: int) -> None:
        s = self.state
        for stats in self.learning.learn(step, before, s.env_steps):
            bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
            if bad:
                raise NonFiniteError(f"training stopped at env step {s.env_steps}: update "
                                     f"{self.agent.updates} gave {bad}; try a smaller lr "
                                     "or max_grad_norm")
            for key, value in stats.items():
                s.stat_sums[key] = s.stat_sums.get(key, 0.0) + value
            s.n_updates += 1

    def _check_weights(self) -> dict[str, Any]:
        """The agent's state, or `NonFiniteError` if any weight is NaN or infinite."""
        state = self.agent.state_dict()
        bad = non_finite_entries(state)
        if bad:
            raise NonFiniteError(f"training stopped at env step {self.state.env_steps}: "
                                 f"non-finite weights in {bad[:3]}; nothing was saved")
        return state

    def _after_step(self, before: int, bar: tqdm) -> None:
        t = self.config.train
        after = self.state.env_steps
        bar.update(after - before)
        if crossed(before, after, t.log_every):
            self._log(bar)
        if crossed(before, after, t.eval_every):
            self._evaluate()
        if crossed(before, after, t.checkpoint_every):
            self._save_latest()

    def _log(self, bar: tqdm) -> None:
        s = self.state
        now = time.perf_counter()
        recent = float(np.mean(s.recent_returns)) if s.recent_returns else float("nan")
        speed = (s.env_steps - self.last_log[1]) / max(now - self.last_log[0], 1e-9)
        record = {
            "env_steps": s.env_steps, "updates": self.agent.updates,
            "train/episodes": s.episodes, "train/episode_return": recent,
            "train/epsilon": self.epsilon,
            **{f"train/{k}": v / s.n_updates for k, v in s.stat_sums.items()},
            "train/steps_per_s": speed, **self.learning.log_fields(),
        }
        self.run_dir.log(record)
        s.stat_sums, s.n_updates = {}, 0
        self.last_log = (now, s.env_steps)
        bar.set_postfix(ret=f"{recent:.1f}", eps=f"{self.epsilon:.3f}", refresh=False)

    def _evaluate(self) -> dict[str, float]:
        s, t = self.state, self.config.train
        agent_state = self._check_weights()
        metrics = self.evaluate(self.agent.greedy_policy(), t.eval_episodes, self.eval_seed)
        if "return" not in metrics:
            raise ConfigError("evaluate() must return a dict with the key 'return'")
        s.last_eval_step, s.last_eval = s.env_steps, dict(metrics)
        score = float(metrics["return"])
        self.run_dir.log({"env_steps": s.env_steps, "updates": self.agent.updates,
                          **{f"eval/{k}": v for k, v in metrics.items()}})
        if score > s.best_return:
            s.best_return, s.evals_since_best = score, 0
            save_checkpoint(self.run_dir.best, {
                "kind": "best", "config": run_config_dict(self.config),
                "env_steps": s.env_steps, "eval": dict(metrics), "agent": agent_state})
        else:
            s.evals_since_best += 1
        if t.target_return is not None and score >= t.target_return:
            s.stop_reason = f"eval return {score:.2f} reached target {t.target_return}"
        elif 0 < t.early_stopping_patience <= s.evals_since_best:
            s.stop_reason = f"no better eval return in {s.evals_since_best} evaluations"
        return metrics

    def _finish(self) -> dict[str, Any]:
        s = self.state
        if s.last_eval_step != s.env_steps:
            self._evaluate()
        self._save_latest()
        return {
            "env_steps": s.env_steps, "updates": self.agent.updates, "episodes": s.episodes,
            "best_return": s.best_return, "final_eval": dict(s.last_eval),
            "stop_reason": s.stop_reason or "total_env_steps reached",
            "wall_time_s": time.perf_counter() - self.started,
            "out_dir": str(self.run_dir.path),
        }

    def _save_latest(self) -> None:
        save_checkpoint(self.run_dir.latest, {
            "kind": "latest", "config": run_config_dict(self.config),
            "agent": self._check_weights(), "learning": self.learning.state_dict(),
            "loop": asdict(self.state), "collector": self.collector.state_dict()})

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        path = self.run_dir.latest
        bad = non_finite_entries(checkpoint["agent"])
        if bad:
            raise CheckpointError(f"{path}: non-finite weights in {bad[:3]}")
        try:
            self.agent.load_state_dict(checkpoint["agent"])
            self.learning.load_state_dict(checkpoint["learning"])
            self.state = LoopState(**checkpoint["loop"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} does not fit this run ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        if self.collector.load_state_dict(checkpoint["collector"]):
            return
        warnings.warn(f"env {self.config.env.id} has no get_state()/set_state(): resuming with "
                      "freshly reset episodes, so this run will not match an uninterrupted "
                      "one exactly", stacklevel=3)
        self.collector.reset(self.env_seed + self.state.env_steps)


def _read_latest(out_dir: str | Path, config: RunConfig) -> dict[str, Any]:
    path = Path(out_dir) / "checkpoints" / "latest.pt"
    checkpoint = load_checkpoint(path)
    require_parts(checkpoint, LATEST_PARTS, path, "resuming")
    changed = saved_config_changes(checkpoint, config, path)
    if changed:
        raise ConfigError(f"cannot resume {out_dir}: config differs from the saved run in "
                          f"{'; '.join(changed)}")
    return checkpoint


def train(config: RunConfig, out_dir: str | Path, *, resume: bool = False,
          evaluate: Evaluate | None = None) -> dict[str, Any]:
    """Train `config` into the run folder `out_dir`; returns a summary dict.

    `resume=True` continues from `out_dir/checkpoints/latest.pt`. `evaluate(policy,
    n_episodes, seed) -> {"return": ..., ...}` scores the greedy policy; its "return"
    drives early stopping and best.pt. The default runs the env itself
    (`liveq.train.evaluate.make_gym_evaluator`). Every evaluation of a run gets the same
    seed (common random numbers), so successive evaluations differ only by the policy.
    Torch runs on `config.train.torch_threads` threads, restored afterwards.
    """
    with torch_threads(config.train.torch_threads):
        return Trainer(config, out_dir, resume=resume, evaluate=evaluate).run()
