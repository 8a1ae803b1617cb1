"""PPO on RLlib with several env runners, judged by liveq's own evaluator.

    python -m liveq.experiments.rllib_ppo --config livestream_small --env-runners 2 \\
        --iterations 20

1. start   a local Ray instance (or join a cluster with `--address`), register liveq's
           envs with RLlib through their batched vector entry point
           (`liveq.experiments.rllib_env`)
2. train   RLlib's PPO with `MaskedPPOModule` (liveq's actor and critic, masked
           candidates at probability 0) on `--env-runners` runners, each stepping
           `env.n_envs` sessions of the config's world as one vector env; the loss
           settings are liveq's own `ppo` learner's (`agent.ppo`, or derived from the
           config's agent as `liveq compare` does), mapped to RLlib's names
3. judge   the greedy policy (argmax over valid candidates) before and after training,
           beside the popular-now baseline, on the same `--episodes` sessions of the
           evaluation world (`--seed`), as `liveq compare` does

It prints the mean return of the episodes each iteration finished, then the table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.ppo import PPOConfig as RLlibPPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from liveq.algos.ppo import PPOConfig
from liveq.core.config import load_yaml, require
from liveq.core.errors import ConfigError, LiveqError
from liveq.core.report import format_table
from liveq.eval.online import evaluate
from liveq.experiments.rllib_env import VECTOR_MODE, MaskedPPOModule, register_rllib_envs
from liveq.policies.baselines import make_baseline
from liveq.sim.vector import make_vec_env
from liveq.train.config import RunConfig, load_run_config
from liveq.train.registry import derive_config

EVAL_ENVS = 64  # parallel evaluation sessions, as `liveq compare`


@dataclass(kw_only=True)
class RLlibRunSettings:
    """How the RLlib run is laid out; the world and PPO's loss come from the run config."""

    env_runners: int = 2
    """RLlib env runners (Ray actors of one CPU each) collecting in parallel."""
    iterations: int = 20
    """RLlib training iterations (each collects train_batch steps, then updates)."""
    train_batch: int = 2048
    """Env steps per iteration, summed over runners and their sessions."""
    episodes: int = 1000
    """Evaluation sessions per policy."""
    seed: int = 12345
    """Evaluation world's seed (shared by every policy judged)."""
    num_cpus: int = 0
    """CPUs of the local Ray instance; 0 lets Ray count them (ignored with address)."""
    address: str | None = None
    """A Ray cluster to join (`auto` or host:port); None starts a local instance."""

    def validate(self) -> None:
        require(self.env_runners >= 0, f"env_runners must be >= 0, got {self.env_runners}")
        for name in ("iterations", "train_batch", "episodes"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(self.num_cpus >= 0, f"num_cpus must be >= 0, got {self.num_cpus}")
        require(self.address is not None or not self.num_cpus
                or self.env_runners <= self.num_cpus,
                f"{self.env_runners} env runners need {self.env_runners} CPUs but the local "
                f"Ray instance has {self.num_cpus}: Ray would wait for them forever")


def ppo_settings(run: RunConfig) -> PPOConfig:
    """liveq's PPO settings of the run: `agent.ppo`, or derived from its agent's (network
    width, learning rate, gamma) as `liveq compare --agents ppo` does."""
    if run.agent.name == "ppo":
        return run.agent.settings
    return derive_config("ppo", run.agent.settings)


def algorithm_config(run: RunConfig, settings: RLlibRunSettings) -> RLlibPPOConfig:
    """RLlib's PPO config: the run's world through the vector entry point, liveq's loss
    settings under RLlib's names, and `MaskedPPOModule`."""
    ppo = ppo_settings(run)
    # liveq's 0 means "off" for the ratio clip and the gradient clip; liveq clips neither
    # the value loss nor adds a KL penalty. Not mapped: anneal_lr (RLlib's lr stays
    # constant here) and normalize_advantages (RLlib always normalises per batch).
    return (
        RLlibPPOConfig()
        .framework("torch")
        .environment(run.env.id, env_config=dict(run.env.kwargs))
        .env_runners(num_env_runners=settings.env_runners,
                     num_envs_per_env_runner=run.env.n_envs,
                     gym_env_vectorize_mode=VECTOR_MODE)
        .training(gamma=ppo.gamma, lambda_=ppo.gae_lambda, lr=ppo.lr,
                  train_batch_size_per_learner=settings.train_batch,
                  minibatch_size=max(settings.train_batch // ppo.n_minibatches, 1),
                  num_epochs=ppo.n_epochs, clip_param=ppo.clip_range or 1e6,
                  vf_loss_coeff=ppo.value_coef, entropy_coeff=ppo.entropy_coef,
                  grad_clip=ppo.max_grad_norm or None, use_kl_loss=False,
                  vf_clip_param=float("inf"))
        .rl_module(rl_module_spec=RLModuleSpec(
            module_class=MaskedPPOModule, model_config={"hidden_sizes": ppo.hidden_sizes}))
        .debugging(seed=run.seed)
    )


def start_ray(settings: RLlibRunSettings) -> None:
    """Join the cluster at `settings.address`, or start a quiet local instance."""
    if ray.is_initialized():
        return
    if settings.address is not None:
        ray.init(address=settings.address, log_to_driver=False)
    else:
        ray.init(num_cpus=settings.num_cpus or None, include_dashboard=False,
                 log_to_driver=False)


def iteration_summary(result: dict[str, Any]) -> tuple[int, float]:
    """Env steps sampled so far and the mean return of recently finished episodes (NaN
    before the first episode ends)."""
    runners = result.get("env_runners", {})
    return (int(runners.get("num_env_steps_sampled_lifetime", 0)),
            float(runners.get("episode_return_mean", float("nan"))))


def train(algo: Algorithm, iterations: int, echo: bool = True) -> list[tuple[int, float]]:
    """Run `iterations` RLlib iterations; returns (env steps, mean return) per iteration."""
    history = []
    for i in range(1, iterations + 1):
        steps, mean_return = iteration_summary(algo.train())
        history.append((steps, mean_return))
        if echo:
            print(f"iteration {i:3d}  env steps {steps:8d}  episode return {mean_return:7.3f}",
                  flush=True)
    return history


def judge(policies: dict[str, Any], run: RunConfig,
          settings: RLlibRunSettings) -> dict[str, dict[str, dict[str, float]]]:
    """liveq's online evaluation of each greedy policy and popular-now, on the same
    sessions of the evaluation world."""
    results = {}
    for name, policy in [*policies.items(), ("popular", None)]:
        env = make_vec_env(run.env.id, min(EVAL_ENVS, settings.episodes), run.env.kwargs)
        make = (lambda e: make_baseline("popular", e, settings.seed)) if policy is None \
            else (lambda _e, p=policy: p)
        results[name] = evaluate(make, env, settings.episodes, settings.seed)
        env.close()
    return results


def build_algorithm(run: RunConfig, settings: RLlibRunSettings) -> Algorithm:
    """Check the settings, start or join Ray, register liveq's envs and build RLlib's PPO."""
    settings.validate()
    if not run.env.id.startswith(("liveq/LiveStream", "liveq/Ecommerce")):
        raise ConfigError(f"env.id: the RLlib example trains on envs with candidates and a "
                          f"mask (liveq/LiveStream-v0, liveq/Ecommerce-v0), got {run.env.id}")
    torch.set_num_threads(run.train.torch_threads)
    start_ray(settings)
    register_rllib_envs()
    return algorithm_config(run, settings).build_algo()


def run_rllib_ppo(run: RunConfig, settings: RLlibRunSettings, out: Path | None = None,
                  echo: bool = True) -> dict[str, Any]:
    """Train and judge; returns the per-iteration history and the evaluation table."""
    algo = build_algorithm(run, settings)
    try:
        untrained = algo.get_module().greedy_policy()
        history = train(algo, settings.iterations, echo)
        policies = {"rllib-ppo (untrained)": untrained,
                    "rllib-ppo": algo.get_module().greedy_policy()}
        if out is not None:
            algo.save_to_path(str(out.resolve()))
    finally:
        algo.stop()
    return {"history": history, "results": judge(policies, run, settings)}


def parse_args(argv: list[str] | None) -> tuple[RunConfig, RLlibRunSettings, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="run config YAML or a shipped name")
    p.add_argument("--env-runners", type=int, default=2, help="RLlib env runners")
    p.add_argument("--iterations", type=int, default=20, help="RLlib training iterations")
    p.add_argument("--train-batch", type=int, default=2048, help="env steps per iteration")
    p.add_argument("--episodes", type=int, default=1000, help="evaluation sessions per policy")
    p.add_argument("--seed", type=int, default=12345, help="evaluation seed")
    p.add_argument("--num-cpus", type=int, default=0, help="local Ray CPUs (0: all)")
    p.add_argument("--address", help="join this Ray cluster instead of starting one")
    p.add_argument("--out", help="save RLlib's checkpoint of the trained algorithm here")
    args = p.parse_args(argv)
    settings = RLlibRunSettings(env_runners=args.env_runners, iterations=args.iterations,
                                train_batch=args.train_batch, episodes=args.episodes,
                                seed=args.seed, num_cpus=args.num_cpus, address=args.address)
    return (load_run_config(load_yaml(args.config)), settings,
            Path(args.out) if args.out else None)


def main(argv: list[str] | None = None) -> int:
    try:
        run, settings, out = parse_args(argv)
        report = run_rllib_ppo(run, settings, out)
    except LiveqError as exc:
        print(f"liveq: error: {exc}", file=sys.stderr)
        return 2
    print(format_table(report["results"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
