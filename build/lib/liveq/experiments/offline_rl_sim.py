"""Offline RL proven in the simulator: learn from a behaviour log, then check two ways.

    1. log      the behaviour policy (popular:0.3) recommends to `sessions` concurrent
                viewers for `steps` steps; every transition goes into a replay buffer
                (`liveq.train.offline.log_transitions`)
    2. learn    from that buffer alone (`train_offline`: no env, no acting), each a
                registered learner (`liveq.train.registry`) sharing the network settings:
                  dqn     learner cql: double DQN + CQL penalty (cql_alpha)
                  bc      learner bc: the cross-entropy of the logged action
                  bandit  learner bandit: gamma 0 + CQL, the immediate reward only
                  dqn-nocql  learner dqn: double DQN alone (an ablation, not run by default)
    3. judge    (a) off-policy, on a second, held-out behaviour log, as `liveq ope sim`
                does: each learned policy (greedy, and softened with `soften` uniform
                exploration) estimated by IPS/SNIPS/DM/DR/switch-DR beside the exact truth
                (the expected immediate reward at the logged states);
                (b) online: mean session return with a 95% interval over `episodes`
                sessions of a fresh world, every policy on the same seed (common random
                numbers), beside the behaviour, reference baselines and DQN trained
                online with the same network, env steps and gradient steps.

The two judgements measure different things: OPE here is one-step (a contextual-bandit
value per logged state), the online return is the whole session. A policy that plans for
later steps can lose on the first and win on the second.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveq.algos.dqn import DQNAgent, DQNConfig
from liveq.core.config import require
from liveq.eval.online import evaluate, make_online_evaluator
from liveq.experiments.ope_sim import (
    ENV_ID,
    SimLog,
    SimOPEConfig,
    action_distribution,
    build_policy,
    collect_log,
    evaluate_log,
    parse_policy,
)
from liveq.ope.estimators import EstimatorConfig
from liveq.policies.explore import EpsilonGreedy
from liveq.sim.vector import make_vec_env
from liveq.train.loop import torch_threads
from liveq.train.offline import LoggedTransitions, log_transitions, train_offline
from liveq.train.registry import build_learner, derive_config

SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


def small_dqn() -> DQNConfig:
    """The DQN settings of configs/livestream_small.yaml."""
    return DQNConfig(gamma=0.95, lr=1e-3, batch_size=64, buffer_size=20_000,
                     learning_starts=500, train_freq=16, gradient_steps=2,
                     target_update_interval=200, epsilon_fraction=0.3, hidden_sizes=[64, 64])


# the experiment's learner name -> (registered algorithm, whether it takes cql_alpha)
OFFLINE_LEARNERS: dict[str, tuple[str, bool]] = {
    "dqn": ("cql", True),
    "dqn-nocql": ("dqn", False),
    "bc": ("bc", False),
    "bandit": ("bandit", True),
}


@dataclass(kw_only=True)
class OfflineRLConfig:
    """What `liveq ope offline-rl` logs, learns and evaluates."""

    sessions: int = 64
    """Concurrent viewer sessions of the logs, the online evaluation and online DQN."""
    steps: int = 1024
    """Steps (10 minutes each) of the training log: rows = sessions x steps, about a week."""
    heldout_steps: int = 256
    """Steps of the held-out log, another world, used only for off-policy evaluation."""
    behaviour: str = "popular:0.3"
    """Logging policy, NAME or NAME:EPSILON (a liveq baseline)."""
    learners: list[str] = field(default_factory=lambda: ["dqn", "bc", "bandit"])
    """Offline learners, from OFFLINE_LEARNERS."""
    references: list[str] = field(default_factory=lambda: ["popular", "random"])
    """Baselines evaluated beside them (online and off-policy)."""
    gradient_steps: int = 3000
    """Gradient steps of each offline learner."""
    cql_alpha: float = 0.1
    """Weight of the CQL penalty of dqn and bandit."""
    soften: float = 0.1
    """Uniform exploration mixed into each learned policy for a second OPE target; 0: none."""
    episodes: int = 1024
    """Sessions per policy in the online evaluation."""
    online_dqn: bool = True
    """Also train DQN online with the same network, transitions and gradient steps."""
    env: dict[str, Any] = field(default_factory=lambda: dict(SMALL_WORLD))
    """LiveStreamConfig overrides (slate_size must stay 1)."""
    dqn: DQNConfig = field(default_factory=small_dqn)
    """Network and optimiser settings shared by every learner."""
    estimators: EstimatorConfig = field(default_factory=lambda: EstimatorConfig(n_boot=200))
    """Estimator, reward-model and bootstrap settings."""

    def validate(self) -> None:
        for name in ("sessions", "steps", "heldout_steps", "gradient_steps"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(self.episodes >= self.sessions, f"episodes ({self.episodes}) must be at "
                f"least sessions ({self.sessions})")
        unknown = [n for n in self.learners if n not in OFFLINE_LEARNERS]
        require(bool(self.learners) and not unknown, f"learners: unknown {unknown}; choose "
                f"from {sorted(OFFLINE_LEARNERS)}")
        require(len(set(self.learners)) == len(self.learners), "learners repeat a name")
        for text in (self.behaviour, *self.references):
            parse_policy(text)
        require(self.cql_alpha > 0, f"cql_alpha must be > 0, got {self.cql_alpha} (learner "
                "dqn-nocql is DQN without the penalty)")
        require(0.0 <= self.soften <= 1.0, f"soften must be in [0, 1], got {self.soften}")
        require(self.env.get("slate_size", 1) == 1, "offline-rl needs env.slate_size 1")
        self.dqn.validate()
        self.estimators.validate()


# ------------------------------------------------------------------ learning
def learner_config(config: OfflineRLConfig, name: str) -> Any:
    """Learner `name`'s config: the shared DQN settings it has, and cql_alpha."""
    algorithm, conservative = OFFLINE_LEARNERS[name]
    changes = {"cql_alpha": config.cql_alpha} if conservative else {}
    return derive_config(algorithm, config.dqn, **changes)


def log_behaviour(config: OfflineRLConfig, seed: int) -> LoggedTransitions:
    """The training log: `config.steps` steps of the behaviour policy, in a replay buffer."""
    env = make_vec_env(ENV_ID, config.sessions, config.env)
    try:
        behaviour = build_policy(parse_policy(config.behaviour), env, seed)
        return log_transitions(env, behaviour, config.steps, seed)
    finally:
        env.close()


def train_learners(config: OfflineRLConfig, logged: LoggedTransitions,
                   seed: np.random.SeedSequence) -> tuple[dict[str, Any], dict[str, dict]]:
    """Each offline learner trained on the same buffer; the agents and their loss stats."""
    env = make_vec_env(ENV_ID, 1, config.env)
    agents, stats = {}, {}
    for name, learner_seq in zip(config.learners, seed.spawn(len(config.learners)),
                                 strict=True):
        agent_seq, sample_seq = learner_seq.spawn(2)
        agents[name] = build_learner(OFFLINE_LEARNERS[name][0], env.single_observation_space,
                                     env.single_action_space, learner_config(config, name),
                                     agent_seq)
        stats[name] = train_offline(agents[name], logged.buffer, config.gradient_steps,
                                    seed=sample_seq)
    env.close()
    return agents, stats


def train_online_dqn(config: OfflineRLConfig, transitions: int, seed: int) -> DQNAgent:
    """DQN trained online with the shared settings, `transitions` env steps and as many
    gradient steps as the offline learners (one every `train_freq` steps)."""
    from liveq.train.config import AgentConfig, EnvConfig, RunConfig, TrainConfig
    from liveq.train.loop import Trainer

    dqn = copy.deepcopy(config.dqn)
    dqn.learning_starts = min(dqn.learning_starts, transitions // 2)
    dqn.gradient_steps = 1
    dqn.train_freq = max(1, (transitions - dqn.learning_starts) // config.gradient_steps)
    dqn.buffer_size = transitions
    run = RunConfig(seed=seed, env=EnvConfig(id=ENV_ID, n_envs=config.sessions,
                                             kwargs=config.env),
                    agent=AgentConfig(dqn=dqn),
                    train=TrainConfig(total_env_steps=transitions, eval_every=0,
                                      eval_episodes=1, checkpoint_every=0,
                                      log_every=transitions, progress=False))
    evaluator = make_online_evaluator(ENV_ID, config.env, config.sessions)
    with tempfile.TemporaryDirectory(prefix="liveq-online-dqn-") as out:
        trainer = Trainer(run, out, resume=False, evaluate=evaluator)
        trainer.run()
    return trainer.agent


# ------------------------------------------------------------------ judging
def log_observations(log: SimLog) -> dict[str, np.ndarray]:
    """The logged states as one batched LiveStream observation."""
    return {"viewer": log.viewer, "candidates": log.candidates,
            "mask": log.mask.astype(np.int8)}


def support(log: SimLog) -> dict[str, dict[str, float]]:
    """Per target: how much of the log its importance weights can use.

    `ess_share` = (sum w)^2 / (n sum w^2), the effective sample size as a share of the
    rounds; `max_weight` the largest weight; `unsupported` the target's mean probability
    on actions the behaviour never takes, which no importance weight can see (0 when
    the behaviour explores every candidate; IPS is biased when it is above 0).
    """
    rows = np.arange(len(log.action))
    out = {}
    for name, pi_e in log.target_dists.items():
        w = pi_e[rows, log.action] / log.pscore
        unsupported = (pi_e * (log.behaviour_dist == 0)).sum(axis=1)
        out[name] = {"ess_share": float(w.sum() ** 2 / (len(w) * (w ** 2).sum())),
                     "max_weight": float(w.max()), "unsupported": float(unsupported.mean())}
    return out


def off_policy(config: OfflineRLConfig, policies: dict[str, Any],
               seed: int) -> tuple[list[dict], dict[str, dict[str, float]], int]:
    """OPE rows (target, estimator, truth, estimate, interval) on a held-out log, the
    support of each target and the log's round count.

    The behaviour and the references are targets of `collect_log`; each learned policy
    is read off the logged states afterwards (a Q-network sees only the observation),
    greedy and, when `config.soften > 0`, mixed with that share of uniform choices.
    """
    sim = SimOPEConfig(sessions=config.sessions, steps=config.heldout_steps,
                       behaviour=config.behaviour,
                       targets=[config.behaviour, *config.references], env=config.env,
                       estimators=config.estimators)
    log = collect_log(sim, seed)
    obs = log_observations(log)
    dists = dict(log.target_dists)
    for name, policy in policies.items():
        dists[name] = action_distribution(policy, obs)
        if config.soften > 0:
            soft = EpsilonGreedy(policy, config.soften, np.random.default_rng(seed))
            dists[f"{name}:{config.soften:g}"] = action_distribution(soft, obs)
    log = log._replace(target_dists=dists)
    return evaluate_log(log, config.estimators, seed), support(log), len(log.action)


def online(config: OfflineRLConfig, policies: dict[str, Any],
           seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """Session metrics with 95% intervals of the behaviour, the references and `policies`,
    each on the same seeded world."""
    makers: dict[str, Callable] = {
        text: (lambda env, t=text: build_policy(parse_policy(t), env, seed))
        for text in [config.behaviour, *config.references]}
    makers.update({name: (lambda env, p=policy: p) for name, policy in policies.items()})
    results = {}
    for name, make in makers.items():
        env = make_vec_env(ENV_ID, config.sessions, config.env)
        results[name] = evaluate(make, env, config.episodes, seed)
        env.close()
    return results


def run_offline_rl(config: OfflineRLConfig, seed: int) -> dict[str, Any]:
    """Log, learn offline, judge off-policy and online; everything the tables show."""
    config.validate()
    with torch_threads(1):
        return _run(config, seed)


def _run(config: OfflineRLConfig, seed: int) -> dict[str, Any]:
    log_seq, heldout_seq, learn_seq, online_seq, eval_seq = np.random.SeedSequence(
        seed).spawn(5)
    logged = log_behaviour(config, int(log_seq.generate_state(1)[0]))
    agents, training = train_learners(config, logged, learn_seq)
    policies = {name: agent.greedy_policy() for name, agent in agents.items()}
    if config.online_dqn:
        online_agent = train_online_dqn(config, logged.buffer.size,
                                        int(online_seq.generate_state(1)[0]))
        policies["online-dqn"] = online_agent.greedy_policy()
    ope_rows, ope_support, rounds = off_policy(config, policies,
                                               int(heldout_seq.generate_state(1)[0]))
    return {"log": {"rows": logged.buffer.size, "transitions": logged.stored,
                    "sessions_ended": logged.episodes,
                    "mean_reward": logged.reward_sum / max(logged.stored, 1)},
            "training": training,
            "online": online(config, policies, int(eval_seq.generate_state(1)[0])),
            "ope": ope_rows, "support": ope_support, "heldout_rounds": rounds}
