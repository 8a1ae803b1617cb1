"""The training loop: collect -> replay -> update, with evaluation, checkpoints and logs.

    obs = env.reset()
    repeat until total_env_steps (or early stopping):
        actions = agent.act(obs)                        epsilon-greedy, from the schedule
        next_obs, r, terminated, truncated = env.step(actions)
        replay.add(obs, actions, r, next_obs, terminated, valid = not ended last step)
        every train_freq env steps after learning_starts: gradient_steps agent.update(batch)
        every log_every / eval_every / checkpoint_every env steps: log / evaluate / save

Vector envs autoreset on the step after an episode ends (Gymnasium NEXT_STEP), and that
step's transition is not stored. Step counts are environment steps summed over envs.

Exact resume: `checkpoints/latest.pt` holds the agent (networks, optimizer, RNG), the
replay with its codec, the loop counters and RNG, the current observation, and the env
state when the vector env offers `get_state()`/`set_state()`. With such an env a resumed
run ends with bitwise the same weights as an uninterrupted one. Envs without `get_state`
(e.g. Gymnasium's CartPole) resume from freshly reset episodes: training goes on from
the same agent and replay, but no longer matches an uninterrupted run exactly.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from liveq.algos.dqn import DQNAgent
from liveq.buffers.replay import ReplayBuffer, make_codec
from liveq.core.config import ConfigError, to_dict
from liveq.sim.vector import make_vec_env
from liveq.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from liveq.train.config import RunConfig, load_run_config
from liveq.train.evaluate import Evaluate, make_gym_evaluator
from liveq.train.run import RunDir

RECENT_EPISODES = 100  # episodes averaged for the logged training return


def build_agent(config: RunConfig, obs_space: Any, action_space: Any,
                seed: int | np.random.SeedSequence) -> DQNAgent:
    """The learner named by `config.agent.name` for these (single-env) spaces."""
    builders = {"dqn": lambda: DQNAgent(obs_space, action_space, config.agent.dqn, seed)}
    return builders[config.agent.name]()


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (before, after]; never when every == 0."""
    return every > 0 and after // every > before // every


@dataclass
class LoopState:
    """Counters and running statistics of the loop (all part of the checkpoint)."""

    env_steps: int = 0
    episodes: int = 0
    episode_returns: np.ndarray | None = None  # (n_envs,) return so far of the open episode
    prev_done: np.ndarray | None = None  # (n_envs,) bool: slot ended on the last step
    recent_returns: list[float] = field(default_factory=list)
    best_return: float = float("-inf")
    evals_since_best: int = 0
    last_eval_step: int = -1
    last_eval: dict[str, float] = field(default_factory=dict)
    stop_reason: str = ""
    loss_sum: float = 0.0
    q_sum: float = 0.0
    n_losses: int = 0


class Trainer:
    """One run: env, agent, replay and run folder, stepped by `run()`."""

    def __init__(self, config: RunConfig, out_dir: str | Path, *, resume: bool,
                 evaluate: Evaluate | None):
        self.config = config
        env_seq, agent_seq, sample_seq, eval_seq = np.random.SeedSequence(config.seed).spawn(4)
        self.env_seed = int(env_seq.generate_state(1)[0])
        self.eval_seed = int(eval_seq.generate_state(1)[0])
        self.env = make_vec_env(config.env.id, config.env.n_envs, config.env.kwargs)
        self.agent = build_agent(config, self.env.single_observation_space,
                                 self.env.single_action_space, agent_seq)
        self.codec = make_codec(self.env, config.agent.dqn.buffer_size)
        self.replay = ReplayBuffer(self.codec, config.agent.dqn.buffer_size)
        self.sample_rng = np.random.default_rng(sample_seq)
        self.evaluate = evaluate or make_gym_evaluator(config.env.id, config.env.kwargs)
        self.state = LoopState()
        checkpoint = _read_latest(out_dir, config) if resume else None
        resume_step = None if checkpoint is None else int(checkpoint["loop"]["env_steps"])
        self.run_dir = RunDir(out_dir, config, resume_step=resume_step)
        if checkpoint is None:
            self._reset_env(self.env_seed)
        else:
            self._restore(checkpoint)
        self.started = time.perf_counter()
        self.last_log = (self.started, self.state.env_steps)

    def _reset_env(self, seed: int) -> None:
        n_envs = self.config.env.n_envs
        self.obs, infos = self.env.reset(seed=seed)
        self.obs_encoded = self.codec.encode(self.obs, infos)
        self.state.episode_returns = np.zeros(n_envs)
        self.state.prev_done = np.zeros(n_envs, dtype=bool)

    def run(self) -> dict[str, Any]:
        """Train to the end of the schedule or early stop; returns the summary."""
        total = self.config.train.total_env_steps
        bar = tqdm(total=total, initial=self.state.env_steps, unit="step", dynamic_ncols=True,
                   disable=not self.config.train.progress)
        try:
            while self.state.env_steps < total and not self.state.stop_reason:
                before = self.state.env_steps
                self._collect()
                self._learn(before)
                self._after_step(before, bar)
            return self._finish()
        finally:
            bar.close()
            self.run_dir.close()
            self.env.close()

    def _collect(self) -> None:
        s = self.state
        self.agent.set_progress(s.env_steps, self.config.train.total_env_steps)
        actions = self.agent.act(self.obs).actions
        next_obs, rewards, terminated, truncated, infos = self.env.step(actions)
        next_encoded = self.codec.encode(next_obs, infos)
        valid = ~s.prev_done  # a slot that ended last step was just autoreset
        self.replay.add(self.obs_encoded, actions, rewards, next_encoded, terminated, valid)
        done = (terminated | truncated) & valid
        s.episode_returns += np.where(valid, rewards, 0.0)
        if done.any():
            s.recent_returns = (s.recent_returns
                                + s.episode_returns[done].tolist())[-RECENT_EPISODES:]
            s.episodes += int(done.sum())
            s.episode_returns[done] = 0.0
        s.prev_done = done
        self.obs, self.obs_encoded = next_obs, next_encoded
        s.env_steps += self.config.env.n_envs

    def _learn(self, before: int) -> None:
        c = self.config.agent.dqn
        s = self.state
        if s.env_steps < c.learning_starts:
            return
        n_updates = (s.env_steps // c.train_freq - before // c.train_freq) * c.gradient_steps
        for _ in range(n_updates):
            stats = self.agent.update(self.replay.sample(c.batch_size, self.sample_rng))
            s.loss_sum += stats["loss"]
            s.q_sum += stats["q_mean"]
            s.n_losses += 1

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
        record = {
            "env_steps": s.env_steps, "updates": self.agent.updates,
            "train/episodes": s.episodes, "train/episode_return": recent,
            "train/epsilon": self.agent.epsilon,
            "train/loss": s.loss_sum / s.n_losses if s.n_losses else float("nan"),
            "train/q_mean": s.q_sum / s.n_losses if s.n_losses else float("nan"),
            "train/steps_per_s": (s.env_steps - self.last_log[1]) / max(now - self.last_log[0],
                                                                        1e-9),
            "train/replay_size": len(self.replay),
        }
        self.run_dir.log(record)
        s.loss_sum, s.q_sum, s.n_losses = 0.0, 0.0, 0
        self.last_log = (now, s.env_steps)
        bar.set_postfix(ret=f"{recent:.1f}", eps=f"{self.agent.epsilon:.3f}", refresh=False)

    def _evaluate(self) -> dict[str, float]:
        s, t = self.state, self.config.train
        metrics = self.evaluate(self.agent.greedy_policy(), t.eval_episodes, self.eval_seed)
        if "return" not in metrics:
            raise ConfigError("evaluate() must return a dict with the key 'return'")
        s.last_eval_step, s.last_eval = s.env_steps, dict(metrics)
        score = float(metrics["return"])
        self.run_dir.log({"env_steps": s.env_steps, "updates": self.agent.updates,
                          **{f"eval/{k}": v for k, v in metrics.items()}})
        if score > s.best_return:
            s.best_return, s.evals_since_best = score, 0
            save_checkpoint(self.run_dir.best, self._best_state(metrics))
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

    def _best_state(self, metrics: dict[str, float]) -> dict[str, Any]:
        return {"kind": "best", "config": to_dict(self.config), "env_steps": self.state.env_steps,
                "eval": dict(metrics), "agent": self.agent.state_dict()}

    def _save_latest(self) -> None:
        get_state = getattr(self.env, "get_state", None)
        save_checkpoint(self.run_dir.latest, {
            "kind": "latest", "config": to_dict(self.config),
            "agent": self.agent.state_dict(), "replay": self.replay.state_dict(),
            "loop": asdict(self.state), "sample_rng": self.sample_rng.bit_generator.state,
            "obs": self.obs, "obs_encoded": self.obs_encoded,
            "env": get_state() if get_state is not None else None,
        })

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        path = self.run_dir.latest
        try:
            self.agent.load_state_dict(checkpoint["agent"])
            self.replay.load_state_dict(checkpoint["replay"])
            self.sample_rng.bit_generator.state = checkpoint["sample_rng"]
            self.state = LoopState(**checkpoint["loop"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path} does not fit this run ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        set_state = getattr(self.env, "set_state", None)
        if set_state is not None and checkpoint["env"] is not None:
            set_state(checkpoint["env"])
            self.obs, self.obs_encoded = checkpoint["obs"], checkpoint["obs_encoded"]
            return
        warnings.warn(f"env {self.config.env.id} has no get_state()/set_state(): resuming with "
                      "freshly reset episodes, so this run will not match an uninterrupted "
                      "one exactly", stacklevel=3)
        self._reset_env(self.env_seed + self.state.env_steps)


def _read_latest(out_dir: str | Path, config: RunConfig) -> dict[str, Any]:
    checkpoint = load_checkpoint(Path(out_dir) / "checkpoints" / "latest.pt")
    saved, given = checkpoint.get("config", {}), to_dict(config)
    changed = [key for key in ("seed", "env", "agent") if saved.get(key) != given[key]]
    if changed:
        raise ConfigError(f"cannot resume {out_dir}: config differs from the saved run in "
                          f"{changed}")
    return checkpoint


def train(config: RunConfig, out_dir: str | Path, *, resume: bool = False,
          evaluate: Evaluate | None = None) -> dict[str, Any]:
    """Train `config` into the run folder `out_dir`; returns a summary dict.

    `resume=True` continues from `out_dir/checkpoints/latest.pt`. `evaluate(policy,
    n_episodes, seed) -> {"return": ..., ...}` scores the greedy policy; its "return"
    drives early stopping and best.pt. The default runs the env itself
    (`liveq.train.evaluate.make_gym_evaluator`). Every evaluation of a run gets the same
    seed (common random numbers), so successive evaluations differ only by the policy.
    """
    torch.set_num_threads(config.train.torch_threads)
    return Trainer(config, out_dir, resume=resume, evaluate=evaluate).run()


def load_agent(path: str | Path) -> tuple[DQNAgent, RunConfig]:
    """The agent saved in a checkpoint (best.pt or latest.pt) and its run config."""
    checkpoint = load_checkpoint(path)
    try:
        config = load_run_config(checkpoint["config"])
        agent_state = checkpoint["agent"]
    except (KeyError, ConfigError) as exc:
        raise CheckpointError(f"{path} holds no usable agent ({exc})") from None
    env = make_vec_env(config.env.id, 1, config.env.kwargs)
    try:
        agent = build_agent(config, env.single_observation_space, env.single_action_space,
                            config.seed)
    finally:
        env.close()
    agent.load_state_dict(agent_state)
    return agent, config
