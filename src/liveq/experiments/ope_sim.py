"""Simulator proof of the off-policy estimators: their bias and RMSE against known truth.

A behaviour policy (by default popular-now with 30% uniform exploration) recommends in
`liveq/LiveStream-v0`; every step of every live session is logged as a contextual-bandit
round: context = the observation, action = the candidate shown, pscore = the behaviour's
exact probability of it, reward = the step's reward. Target policies are then evaluated
off-policy on that log.

The truth is exact, not simulated: at each logged state the simulator's
`expected_immediate_reward` gives every candidate's expected reward, and the target's
value is its average under the target's action distribution over the logged states, the
same quantity every estimator here estimates. Repeating over seeds gives each estimator's
bias, RMSE and the coverage of its bootstrap interval.

Policies are written `NAME` or `NAME:EPSILON` (`liveq.policies.explore.EpsilonGreedy`
around the baseline), with NAME a liveq baseline: oracle, popular, repeat or random. Every
distribution comes from the policy itself (`policy.probabilities`). The estimators here
are single-item ones: slates (env.slate_size > 1) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from liveq.core.config import require
from liveq.core.errors import UsageError
from liveq.ope.estimators import (
    EstimatorConfig,
    LoggedBandit,
    RewardFeatures,
    bootstrap_cis,
    cross_fit,
    fold_ids,
    make_estimators,
)
from liveq.policies.base import Policy
from liveq.policies.baselines import BASELINES, make_baseline, policy_and_epsilon
from liveq.policies.explore import EpsilonGreedy
from liveq.sim.oracle import expected_immediate_reward
from liveq.sim.vector import make_vec_env

ENV_ID = "liveq/LiveStream-v0"


# ------------------------------------------------------------------ policies
class PolicySpec(NamedTuple):
    name: str  # a key of liveq.policies.baselines.BASELINES
    epsilon: float  # share of uniformly random recommendations mixed in


def parse_policy(text: str) -> PolicySpec:
    """`"popular:0.3"` -> PolicySpec("popular", 0.3); `"oracle"` -> epsilon 0."""
    return PolicySpec(*policy_and_epsilon(text, BASELINES, "policy"))


def build_policy(spec: PolicySpec, env, seed: int) -> Policy:
    """The baseline named by `spec`, wrapped in uniform exploration when epsilon > 0."""
    base = make_baseline(spec.name, env, seed)
    if spec.epsilon == 0:
        return base
    return EpsilonGreedy(base, spec.epsilon, np.random.default_rng(seed))


def action_distribution(policy: Policy, obs: dict) -> np.ndarray:
    """`(n, K)` probability of each candidate under `policy` in the current states; a
    policy that recommends slates is refused (the estimators here score single items)."""
    if policy.slate_size != 1:
        raise UsageError(f"off-policy evaluation here scores single recommendations; "
                         f"{type(policy).__name__} recommends slates of {policy.slate_size}")
    return policy.probabilities(obs)


# ------------------------------------------------------------------ logging
@dataclass(kw_only=True)
class SimOPEConfig:
    """What `liveq ope sim` logs and evaluates."""

    seeds: int = 10
    """Independent logs (worlds and behaviour draws) to average bias and RMSE over."""
    sessions: int = 512
    """Concurrent viewer sessions per log."""
    steps: int = 16
    """Simulator steps per log; rounds = live sessions x steps."""
    behaviour: str = "popular:0.3"
    """Logging policy, NAME or NAME:EPSILON."""
    targets: list[str] = field(
        default_factory=lambda: ["oracle", "repeat", "popular:0.1", "random"])
    """Policies to evaluate off-policy."""
    env: dict[str, Any] = field(default_factory=dict)
    """LiveStreamConfig overrides (slate_size must stay 1)."""
    estimators: EstimatorConfig = field(default_factory=lambda: EstimatorConfig(n_boot=200))
    """Estimator, reward-model and bootstrap settings."""

    def validate(self) -> None:
        for name in ("seeds", "sessions", "steps"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(len(self.targets) >= 1, "targets must name at least one policy")
        for text in (self.behaviour, *self.targets):
            parse_policy(text)
        require(self.env.get("slate_size", 1) == 1, "ope sim needs env.slate_size 1")
        self.estimators.validate()


class SimLog(NamedTuple):
    """Logged rounds with the exact truth and every target's action distribution."""

    viewer: np.ndarray  # (n, viewer_dim) float32
    candidates: np.ndarray  # (n, K, n_features) float32
    mask: np.ndarray  # (n, K) bool
    action: np.ndarray  # (n,) int64
    pscore: np.ndarray  # (n,) behaviour propensity of the logged action
    reward: np.ndarray  # (n,) step reward
    q_true: np.ndarray  # (n, K) expected immediate reward, 0 where masked
    behaviour_dist: np.ndarray  # (n, K)
    target_dists: dict[str, np.ndarray]  # target name -> (n, K)


def collect_log(config: SimOPEConfig, seed: int) -> SimLog:
    """Run the behaviour policy for `config.steps` steps and log each live session's round.

    Sessions that restart on a step (their action is ignored) and states without any
    live candidate are not logged.
    """
    env = make_vec_env(ENV_ID, config.sessions, kwargs=config.env)
    obs, _ = env.reset(seed=seed)
    core = env.unwrapped.core
    behaviour = build_policy(parse_policy(config.behaviour), env, seed)
    targets = {t: build_policy(parse_policy(t), env, seed) for t in config.targets}
    parts: dict[str, list] = {k: [] for k in SimLog._fields if k != "target_dists"}
    target_parts: dict[str, list] = {t: [] for t in targets}
    for _ in range(config.steps):
        live = ~core.needs_reset & core.mask.any(axis=1)
        q_true = np.where(core.mask, expected_immediate_reward(core), 0.0)
        for name, target in targets.items():
            target_parts[name].append(action_distribution(target, obs)[live])
        behaviour_dist = action_distribution(behaviour, obs)
        chosen = behaviour.act(obs)
        fields = {"viewer": obs["viewer"], "candidates": obs["candidates"],
                  "mask": obs["mask"].astype(bool), "action": chosen.actions,
                  "pscore": chosen.propensities, "q_true": q_true,
                  "behaviour_dist": behaviour_dist}
        obs, reward, *_ = env.step(chosen.actions)
        fields["reward"] = reward
        for key, value in fields.items():
            parts[key].append(value[live])
    env.close()
    return SimLog(**{k: np.concatenate(v) for k, v in parts.items()},
                  target_dists={t: np.concatenate(v) for t, v in target_parts.items()})


# ------------------------------------------------------------------ evaluation
def evaluate_log(log: SimLog, config: EstimatorConfig, seed: int) -> list[dict]:
    """One row per (target, estimator) of this log: truth, estimate and its interval."""
    features = RewardFeatures(context=log.viewer, pair=log.candidates)
    q_hat = cross_fit(features, log.action, log.reward, n_actions=log.mask.shape[1],
                      kind="linear", l2=config.l2,
                      folds=fold_ids(len(log.action), config.n_folds, seed))
    rows = []
    for t, (target, pi_e) in enumerate(log.target_dists.items()):
        truth = float(np.mean((pi_e * log.q_true).sum(axis=1)))
        data = LoggedBandit(log.reward, log.action, log.pscore, pi_e, q_hat)
        intervals = bootstrap_cis(make_estimators(config), data, config.n_boot,
                                  config.alpha, seed + t)
        rows += [{"target": target, "estimator": name, "truth": truth, "estimate": value,
                  "ci_low": low, "ci_high": high}
                 for name, (value, low, high) in intervals.items()]
    return rows


def summarise(per_seed: list[dict]) -> list[dict]:
    """Bias, RMSE and interval coverage per (target, estimator) over seeds."""
    keys = list(dict.fromkeys((r["target"], r["estimator"]) for r in per_seed))
    out = []
    for target, estimator in keys:
        rows = [r for r in per_seed if (r["target"], r["estimator"]) == (target, estimator)]
        truth = np.array([r["truth"] for r in rows])
        estimate = np.array([r["estimate"] for r in rows])
        error = estimate - truth
        covered = [r["ci_low"] <= r["truth"] <= r["ci_high"] for r in rows]
        out.append({"target": target, "estimator": estimator, "truth": float(truth.mean()),
                    "estimate": float(estimate.mean()), "bias": float(error.mean()),
                    "rmse": float(np.sqrt(np.mean(error ** 2))),
                    "relative_rmse": float(np.sqrt(np.mean(error ** 2)) / abs(truth.mean())),
                    "coverage": float(np.mean(covered)), "seeds": len(rows)})
    return out


def run_sim(config: SimOPEConfig, seed: int) -> dict[str, Any]:
    """Log and evaluate `config.seeds` independent worlds; per-seed rows and the summary."""
    config.validate()
    children = np.random.SeedSequence(seed).generate_state(config.seeds)
    per_seed, rounds = [], []
    for i, child in enumerate(children):
        log = collect_log(config, int(child))
        rounds.append(len(log.action))
        per_seed += [{"seed": i, **row}
                     for row in evaluate_log(log, config.estimators, int(child))]
    return {"summary": summarise(per_seed), "per_seed": per_seed, "rounds": rounds}
