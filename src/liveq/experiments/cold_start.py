"""Cold start through content: do titles and tags help recommend streamers new to the platform?

Two arms train the same learner, budget and seeds on the same world; they differ only in
what the candidate rows show. `stats only` sees the id- and statistics-based features
(logged CTR and watch estimates, confidence, audience, is-new, pair facts, topic match);
`+ content` also sees the `content.dim` content columns of each streamer's title and tags
(all-MiniLM-L6-v2 sentence embeddings, reduced; `liveq.features.content`). The world's
texts are drawn from a seed of their own, so both arms play the very same world.

A newcomer is a streamer first seen less than a day ago (`NEW_STREAMER_MINUTES`): its
statistics are still the prior or thin, so its text is most of what tells it apart. The
world replaces offline streamers 2.5 times as fast as the demo world
(`new_streamer_rate: 0.005`) so that newcomers are common enough to measure. Each arm's
FINAL greedy policy then plays the same seeded sessions; the table gives, per arm, the
mean over training seeds with a 95% Student-t interval of newcomer CTR (clicks per
newcomer impression), watch minutes per newcomer impression and return per session, and
the same of the per-seed differences (the arms of one seed share the world and the
learner's seed, so they pair).

Two more arms answer what the lift could be: `--oracle` adds `ORACLE_ARM`, features from
every streamer's true topic (the ceiling no content map can pass), and `--topic-arm` adds
`TOPIC_ARM`, where the text only fills in unlearnt topics (no content columns).
`--world cold` plays `COLD_WORLD`, a platform where newcomers matter.

    python -m liveq.experiments.cold_start --seeds 0,1,2 --steps 30000
    python -m liveq.experiments.cold_start --world cold --oracle --topic-arm --agent myopic
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveq.core.config import load_yaml
from liveq.core.stats import mean_ci
from liveq.features.schema import NEW_STREAMER_MINUTES
from liveq.sim.livestream import LiveStreamVectorEnv
from liveq.train.config import load_run_config
from liveq.train.loop import train
from liveq.train.restore import load_run_agent

ARMS = {"stats only": "off", "+ content": "text"}
ORACLE_ARM = "oracle topic"
"""The ceiling arm (`--oracle`): content off, and the candidate features are built from
every streamer's TRUE topic (the run's `topic_evidence` set to 0, which changes only what
the features show, never how the world plays). No learner sees it by default; it measures
how much knowing newcomers' topics can be worth at all."""
TOPIC_ARM = "content -> topic"
"""The arm (`--topic-arm`) whose text only fills in unlearnt topics (content mode
`topic`: the ridge map into the topic-match columns, no content columns)."""
EXTRA_ARMS = {TOPIC_ARM: "topic", ORACLE_ARM: "off"}
RUN_DIRS = {"stats only": "stats", "+ content": "content", TOPIC_ARM: "topic",
            ORACLE_ARM: "oracle"}
LIFTS = {"+ content": "lift (paired)", TOPIC_ARM: "topic lift (paired)",
         ORACLE_ARM: "oracle lift (paired)"}
"""The name of each arm's paired difference from `stats only`."""
WORLD = {"new_streamer_rate": 0.005, "invalid_action": "empty"}
"""The world both arms play: newcomers 2.5 times as common as in the demo world."""
COLD_WORLD = {**WORLD, "new_streamer_rate": 0.01, "topic_evidence": 100.0,
              "organic_impressions": 0.3, "match_weight": 3.0, "returning_share": 0.9}
"""A small platform where newcomers matter (`--world cold`): newcomers 5 times as common
as in the demo world (about 60% of candidates), topics learnt slowly from clicks, a tenth
of the demo's outside traffic (so a newcomer's statistics stay thin longer), viewers who
care twice as much about topic, and most of them returning with a profile (so a
streamer's topic can be matched to someone's taste at all)."""
WORLDS = {"newcomers": WORLD, "cold": COLD_WORLD}
EVAL_SEED = 12345
METRICS = ("newcomer_ctr", "newcomer_watch", "return", "newcomer_share",
           "newcomer_clicks", "newcomer_minutes")
"""Newcomer CTR and watch minutes per newcomer impression, return per session, the
newcomer share of impressions, and newcomer clicks and watch minutes per session (a
policy that shows more newcomers may lower their CTR while serving them better)."""


def arm_config(base: dict[str, Any], mode: str, agent: str, seed: int, steps: int,
               topic_evidence: float | None = None, world: dict[str, Any] | None = None):
    """The run config of one arm and seed: content `mode` on `world` (default `WORLD`),
    with `topic_evidence` overriding the world's when given; evaluated only at the end."""
    data = json.loads(json.dumps(base))
    data["seed"] = seed
    agent_cfg = data.setdefault("agent", {})
    section = agent_cfg.pop(agent_cfg.get("name", "dqn"), {})
    if agent == "myopic":
        section.pop("gamma", None)  # pinned to 0
    agent_cfg.update({"name": agent, agent: section})
    kwargs = data.setdefault("env", {}).setdefault("kwargs", {})
    kwargs.update(WORLD if world is None else world,
                  content={**kwargs.get("content", {}), "mode": mode})
    if topic_evidence is not None:
        kwargs["topic_evidence"] = topic_evidence
    data.setdefault("train", {}).update(total_env_steps=steps, eval_every=0,
                                        checkpoint_every=0, progress=False)
    return load_run_config(data)


def play(policy: Any, env: LiveStreamVectorEnv, steps: int) -> dict[str, float]:
    """`METRICS` (and the count of newcomer impressions) over `steps` vector steps of
    `env` (reset with `EVAL_SEED`) under `policy`; per-session figures are means over the
    sessions that ended."""
    obs, _ = env.reset(seed=EVAL_SEED)
    core, shown_all, new_shown, new_clicks, new_watch = env.core, 0, 0, 0, 0.0
    running = np.zeros((3, env.num_envs))  # return, newcomer clicks, newcomer minutes
    ended_sessions: list[np.ndarray] = []
    for _ in range(steps):
        born = core.streamers.born_tick.copy()
        tick = core.tick
        obs, reward, terminated, truncated, info = env.step(policy.act(obs).actions)
        shown, clicked = info["shown_ids"][:, 0], info["clicked_id"]
        is_new = (tick - born) * core.cfg.step_minutes < NEW_STREAMER_MINUTES
        shown_all += int((shown >= 0).sum())
        new_shown += int(((shown >= 0) & is_new[np.maximum(shown, 0)]).sum())
        hit = (clicked >= 0) & is_new[np.maximum(clicked, 0)]
        minutes = np.where(hit, info["watch_minutes"], 0.0)
        new_clicks += int(hit.sum())
        new_watch += float(minutes.sum())
        running += np.stack([reward, hit, minutes])
        ended = terminated | truncated
        ended_sessions.append(running[:, ended].copy())
        running[:, ended] = 0.0
    sessions = np.concatenate(ended_sessions, axis=1)
    per_session = (sessions.mean(axis=1) if sessions.shape[1] else np.full(3, np.nan))
    return {"newcomer_ctr": new_clicks / max(new_shown, 1),
            "newcomer_watch": new_watch / max(new_shown, 1),
            "return": float(per_session[0]),
            "newcomer_share": new_shown / max(shown_all, 1),
            "newcomer_clicks": float(per_session[1]),
            "newcomer_minutes": float(per_session[2]),
            "newcomer_impressions": new_shown}


def run_arm(base: dict[str, Any], arm: str, agent: str, seeds: list[int], steps: int,
            play_steps: tuple[int, int], out: Path, world: dict[str, Any],
            topic_evidence: float | None) -> dict[str, list[float]]:
    """Per-seed `play` results of one arm; runs reused from `out`."""
    mode = {**ARMS, **EXTRA_ARMS}[arm]
    if arm == ORACLE_ARM:
        topic_evidence = 0.0  # features from the true topic; the world plays the same
    per_seed: dict[str, list[float]] = {m: [] for m in (*METRICS, "newcomer_impressions")}
    for seed in seeds:
        run_config = arm_config(base, mode, agent, seed, steps, topic_evidence, world)
        run = out / agent / RUN_DIRS[arm] / f"seed{seed}"
        if not (run / "checkpoints" / "latest.pt").exists():
            train(run_config, run)
        env = LiveStreamVectorEnv(play_steps[1], config=run_config.env.kwargs)
        policy = load_run_agent(run, "latest", run_config, env).greedy_policy()
        for key, value in play(policy, env, play_steps[0]).items():
            per_seed[key].append(value)
        env.close()
        print(f"{arm} seed {seed}: " + ", ".join(f"{m} {per_seed[m][-1]:.3f}"
                                                 for m in METRICS), flush=True)
    return per_seed


def run_cold_start(config: str, agent: str, seeds: list[int], steps: int, eval_steps: int,
                   eval_envs: int, out: Path, topic_evidence: float | None = None,
                   world: str = "newcomers", oracle: bool = False, topic_arm: bool = False
                   ) -> dict[str, dict[str, Any]]:
    """{arm: {metric: {"per_seed", "mean", "ci_low", "ci_high"}}} for `stats only`,
    `+ content` (and `TOPIC_ARM` with `topic_arm`, `ORACLE_ARM` with `oracle`), and the
    same of the per-seed differences from `stats only` (named in `LIFTS`; seeds pair:
    same world, same learner seed); runs reused from `out`."""
    base = load_yaml(config)
    arms = [*ARMS, *([TOPIC_ARM] if topic_arm else []), *([ORACLE_ARM] if oracle else [])]
    per_arm = {arm: run_arm(base, arm, agent, seeds, steps, (eval_steps, eval_envs), out,
                            WORLDS[world], topic_evidence) for arm in arms}
    results = {arm: summary(per_seed) for arm, per_seed in per_arm.items()}
    for arm, name in LIFTS.items():
        if arm in per_arm:
            results[name] = summary({m: list(np.subtract(per_arm[arm][m],
                                                         per_arm["stats only"][m]))
                                     for m in METRICS})
    return results


def summary(per_seed: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """{metric: {"per_seed", "mean", "ci_low", "ci_high"}} with 95% Student-t intervals."""
    return {m: dict(zip(("mean", "ci_low", "ci_high"), mean_ci(v), strict=True),
                    per_seed=[float(x) for x in v]) for m, v in per_seed.items()}


HEADERS = ("newcomer CTR", "newcomer watch min / impression", "return / session",
           "newcomer share of impressions", "newcomer clicks / session",
           "newcomer watch min / session")


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| features | " + " | ".join(HEADERS) + " |", "|---" * (len(HEADERS) + 1) + "|"]
    for arm, r in results.items():
        cells = [f"{r[m]['mean']:.3f} [{r[m]['ci_low']:.3f}, {r[m]['ci_high']:.3f}]"
                 for m in METRICS]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="livestream_small")
    p.add_argument("--agent", default="dqn", choices=("dqn", "myopic"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--eval-steps", type=int, default=400, help="vector steps played")
    p.add_argument("--eval-envs", type=int, default=64)
    p.add_argument("--topic-evidence", type=float, default=None,
                   help="env topic_evidence (default: the world's): 0 the platform knows "
                        "each topic; k > 0 it learns it from clicks (newcomers' unknown)")
    p.add_argument("--world", default="newcomers", choices=tuple(WORLDS),
                   help="newcomers: WORLD; cold: COLD_WORLD (more newcomers, topics "
                        "learnt slowly)")
    p.add_argument("--topic-arm", action="store_true",
                   help=f"add the {TOPIC_ARM!r} arm (text fills in topics, no columns)")
    p.add_argument("--oracle", action="store_true",
                   help=f"add the {ORACLE_ARM!r} ceiling arm (features from true topics)")
    p.add_argument("--out", default="runs/cold_start")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = run_cold_start(args.config, args.agent, seeds, args.steps, args.eval_steps,
                             args.eval_envs, Path(args.out), args.topic_evidence,
                             args.world, args.oracle, args.topic_arm)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
