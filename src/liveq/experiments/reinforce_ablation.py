"""The ablations of top-K off-policy corrected REINFORCE (Chen et al., WSDM 2019), in kind.

Per seed, in the simulator, where the true value of a policy is known by playing it:

    1. log     a behaviour policy different from every learnt one (popular:0.3, the most
               watched candidate or 30% of the time a uniform one) recommends to
               `sessions` viewers for `steps` steps into a replay buffer; the exact
               propensity of every logged item is read off the behaviour's distribution
    2. learn   each variant is REINFORCE (`liveq.algos.reinforce`) trained on that buffer
               alone (`train_offline`), the same network, budget and sampling seed
    3. judge   each learnt policy, serving draws from pi (slates without replacement),
               plays `episodes` fresh sessions of the same seeded world; the behaviour
               and the greedy popular baseline play them too

The variants answer the paper's three questions:

    (a) correction:  none (plain REINFORCE on the log) / importance weights with the
                     logged beta / with the learnt beta head
    (b) K:           on a world that shows slates of `slate` items, K = 1 (importance
                     only) against K = slate (the top-K multiplier), both serving slates
    (c) weight cap:  importance weights with the logged beta, capped at each of `caps`

The table gives the mean over seeds of the true return per session with a 95%
Student-t interval over seeds.

    python -m liveq.experiments.reinforce_ablation --seeds 0,1,2,3,4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liveq.algos.reinforce import ReinforceAgent, ReinforceConfig
from liveq.buffers.replay import ReplayBuffer
from liveq.core.config import require
from liveq.core.stats import mean_ci
from liveq.eval.online import evaluate
from liveq.experiments.compare_offline import logged_propensities
from liveq.experiments.ope_sim import ENV_ID, build_policy, parse_policy
from liveq.sim.vector import make_vec_env
from liveq.train.loop import torch_threads
from liveq.train.offline import log_transitions, train_offline

SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2,
               "invalid_action": "empty"}


def small_reinforce() -> ReinforceConfig:
    """The shared settings: livestream_small's network width, a larger batch."""
    return ReinforceConfig(hidden_sizes=[64, 64], batch_size=256, lr=1e-3, gamma=0.9)


@dataclass(kw_only=True)
class ReinforceAblationConfig:
    """What the ablation logs, trains and plays."""

    sessions: int = 64
    """Concurrent viewer sessions of the log and of the evaluation."""
    steps: int = 512
    """Steps of the behaviour log (rows = sessions x steps)."""
    behaviour: str = "popular:0.3"
    """Logging policy, NAME or NAME:EPSILON (a liveq baseline whose choice reads only the
    observation, so the logged propensities are exact)."""
    gradient_steps: int = 2000
    """Gradient steps of each variant."""
    episodes: int = 512
    """Sessions each policy plays in the evaluation."""
    slate: int = 3
    """Slate size of the world of ablation (b)."""
    caps: list[float] = field(default_factory=lambda: [1.0, 3.0, 10.0, 0.0])
    """Weight caps of ablation (c); 0 = no cap."""
    parts: str = "abc"
    """Which ablations to run (letters a, b, c)."""
    position_decay: float = 0.7
    """Click attraction per rank below the first on the slate world (1 = no position
    bias, the paper's setting of K items that count alike)."""
    env: dict[str, Any] = field(default_factory=lambda: dict(SMALL_WORLD))
    """LiveStreamConfig overrides of the single-item world ((b) adds slate_size)."""
    reinforce: ReinforceConfig = field(default_factory=small_reinforce)
    """The settings every variant starts from."""

    def validate(self) -> None:
        for name in ("sessions", "steps", "gradient_steps", "slate"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(self.episodes >= self.sessions, f"episodes ({self.episodes}) must be at "
                f"least sessions ({self.sessions})")
        require(self.env.get("slate_size", 1) == 1, "env.slate_size must be 1 (ablation (b) "
                "sets the slate world's own)")
        require(all(c >= 0 for c in self.caps), f"caps must be >= 0, got {self.caps}")
        require(bool(self.parts) and set(self.parts) <= set("abc"),
                f"parts must be letters of 'abc', got '{self.parts}'")
        require(0 < self.position_decay <= 1, f"position_decay must be in (0, 1], got "
                f"{self.position_decay}")
        parse_policy(self.behaviour)
        self.reinforce.validate()

    def variants(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """{row label: (world "single" or "slate", ReinforceConfig changes)}."""
        logged = {"behaviour": "logged"}
        rows: dict[str, tuple[str, dict[str, Any]]] = {
            "(a) no correction": ("single", {"correction": "none"}),
            "(a) importance, logged beta": ("single", {"correction": "importance", **logged}),
            "(a) importance, learnt beta": ("single", {"correction": "importance",
                                                       "behaviour": "learnt"}),
            f"(b) slate {self.slate}, K = 1": ("slate", {"correction": "topk", "top_k": 1,
                                                         **logged}),
            f"(b) slate {self.slate}, K = {self.slate}": ("slate", {
                "correction": "topk", "top_k": self.slate, **logged}),
        }
        for cap in self.caps:
            label = f"(c) cap {cap:g}" if cap > 0 else "(c) no cap"
            rows[label] = ("single", {"correction": "importance", "weight_cap": cap, **logged})
        return {label: row for label, row in rows.items() if label[1] in self.parts}

    def worlds(self) -> list[str]:
        """The worlds the chosen parts play on."""
        return [kind for kind, parts in (("single", "ac"), ("slate", "b"))
                if set(parts) & set(self.parts)]

    def world(self, kind: str) -> dict[str, Any]:
        if kind == "slate":
            return {**self.env, "slate_size": self.slate, "position_decay": self.position_decay}
        return dict(self.env)


def train_variant(config: ReinforceAblationConfig, world: dict[str, Any], changes: dict,
                  buffer: ReplayBuffer, propensities: np.ndarray,
                  seed: np.random.SeedSequence) -> ReinforceAgent:
    """One variant trained on `buffer` (every variant of a seed draws the same batches)."""
    env = make_vec_env(ENV_ID, 1, world)
    agent_config = dataclasses.replace(config.reinforce, **changes)
    agent_seq, sample_seq = seed.spawn(2)
    agent = ReinforceAgent(env.single_observation_space, env.single_action_space,
                           agent_config, agent_seq)
    env.close()
    train_offline(agent, agent.prepare_buffer(buffer, propensities), config.gradient_steps,
                  seed=sample_seq)
    return agent


def play(config: ReinforceAblationConfig, world: dict[str, Any], make, seed: int) -> float:
    """Mean true return per session of the policy `make(env)` builds."""
    env = make_vec_env(ENV_ID, config.sessions, world)
    try:
        return float(evaluate(make, env, config.episodes, seed)["return"]["mean"])
    finally:
        env.close()


def run_seed(config: ReinforceAblationConfig, seed: int) -> dict[str, float]:
    """{row label: true return per session} of every variant and reference for one seed."""
    log_seq, learn_seq, eval_seq = np.random.SeedSequence(seed).spawn(3)
    log_seed, eval_seed = (int(s.generate_state(1)[0]) for s in (log_seq, eval_seq))
    results: dict[str, float] = {}
    logs = {}
    for kind in config.worlds():
        world = config.world(kind)
        env = make_vec_env(ENV_ID, config.sessions, world)
        behaviour = build_policy(parse_policy(config.behaviour), env, log_seed)
        logged = log_transitions(env, behaviour, config.steps, log_seed)
        env.close()
        logs[kind] = (logged.buffer, logged_propensities(logged.buffer, behaviour))
        suffix = "" if kind == "single" else f", slate {config.slate}"
        for name in (config.behaviour, "popular"):
            results[f"reference: {name}{suffix}"] = play(
                config, world, lambda e, t=name: build_policy(parse_policy(t), e, eval_seed),
                eval_seed)
    for label, (kind, changes) in config.variants().items():
        # common random numbers: every variant starts from the same weights, draws the
        # same batches and samples its slates from the same random stream
        agent = train_variant(config, config.world(kind), changes, *logs[kind],
                              np.random.SeedSequence(int(learn_seq.generate_state(1)[0])))
        policy = agent.sampling_policy(rng=np.random.default_rng(eval_seed))
        results[label] = play(config, config.world(kind), lambda e, p=policy: p, eval_seed)
    return results


def run_ablation(config: ReinforceAblationConfig, seeds: list[int]) -> dict[str, dict]:
    """{row label: {"returns": per seed, "mean", "ci_low", "ci_high"}}."""
    config.validate()
    per_seed = []
    with torch_threads(1):
        for seed in seeds:
            per_seed.append(run_seed(config, seed))
            print(f"seed {seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                               per_seed[-1].items()), flush=True)
    results = {}
    for label in per_seed[0]:
        returns = [r[label] for r in per_seed]
        mean, low, high = mean_ci(returns)
        results[label] = {"returns": returns, "mean": mean, "ci_low": low, "ci_high": high}
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| policy | true return/session [95% CI over seeds] | per seed |",
             "|---|---|---|"]
    for label, r in results.items():
        seeds = ", ".join(f"{x:.2f}" for x in r["returns"])
        lines.append(f"| {label} | {r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
                     f"| {seeds} |")
    return "\n".join(lines)


def contrasts(results: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """Paired differences over seeds (each seed's worlds and log are shared, so the
    world-to-world spread cancels): {"row - baseline row": (mean, low, high)}."""
    pairs = [(label, "(a) no correction") for label in results
             if label.startswith("(a) importance")]
    pairs += [(label, next(k for k in results if k.endswith("K = 1")))
              for label in results if label.startswith("(b)") and not label.endswith("K = 1")]
    if "(c) cap 10" in results:
        pairs += [(label, "(c) cap 10") for label in results
                  if label.startswith("(c)") and label != "(c) cap 10"]
    out = {}
    for row, base in pairs:
        diff = np.subtract(results[row]["returns"], results[base]["returns"])
        out[f"{row} - {base}"] = mean_ci(diff)
    return out


def contrast_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| paired difference | mean over seeds [95% CI] |", "|---|---|"]
    lines += [f"| {name} | {m:+.2f} [{lo:+.2f}, {hi:+.2f}] |"
              for name, (m, lo, hi) in contrasts(results).items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--sessions", type=int, default=64, help="concurrent viewer sessions")
    p.add_argument("--steps", type=int, default=512, help="steps of the behaviour log")
    p.add_argument("--gradient-steps", type=int, default=2000)
    p.add_argument("--episodes", type=int, default=512)
    p.add_argument("--behaviour", default="popular:0.3")
    p.add_argument("--parts", default="abc", help="ablations to run: letters of abc")
    p.add_argument("--position-decay", type=float, default=0.7,
                   help="position bias of the slate world (1 = none)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    config = ReinforceAblationConfig(sessions=args.sessions, steps=args.steps,
                                     gradient_steps=args.gradient_steps,
                                     episodes=args.episodes, behaviour=args.behaviour,
                                     parts=args.parts, position_decay=args.position_decay)
    results = run_ablation(config, [int(s) for s in args.seeds.split(",")])
    print(table(results))
    if len(next(iter(results.values()))["returns"]) > 1:
        print(contrast_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
