"""Can content predict newcomers' clicks? A click model fitted on logged impressions.

The cold-start experiment (`liveq.experiments.cold_start`) asks whether a learner serves
newcomers better with content; this probe asks the cheaper question underneath it: does
the text carry information about a newcomer's click that the platform's own features
lack? A uniformly random policy plays a world with content on (so every candidate is
shown as often, newcomers included, and no learner's taste skews the log); each
impression keeps the viewer vector, the shown candidate's row and the click. A click
model (a small MLP, logistic output) is fitted on the impressions of three quarters of
the session slots and scored on the newcomer impressions of the rest (held-out
sessions), with three feature sets that differ only in what describes the streamer:

- `stats only`: the platform's features with content off (a newcomer's topic is the true
  one scaled by clicks / (clicks + topic_evidence), so unknown before its first clicks);
- `+ content`: what the `+ content` learners see (the topic filled in from the text by
  the ridge map, plus the content columns);
- `oracle topic`: the topic-match columns from every streamer's true topic, the ceiling
  of what topic knowledge can add (no learner sees it).

Per world seed it reports log-loss and AUC on held-out newcomer impressions; the table
gives means over seeds with 95% Student-t intervals and the paired differences from
`stats only` (negative log-loss, positive AUC differences are better predictions).

    python -m liveq.experiments.cold_start_probe --seeds 0,1,2,3,4 --topic-evidence 30
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from liveq.core.stats import mean_ci
from liveq.experiments.cold_start import WORLDS
from liveq.features.schema import NEW_STREAMER_MINUTES
from liveq.policies.baselines import RandomPolicy
from liveq.sim.livestream import LiveStreamVectorEnv

SMALL = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}
"""The small world's sizes (as `livestream_small`)."""
FEATURE_SETS = ("stats only", "+ content", "oracle topic")
HELD_OUT_EVERY = 4
"""Session slots `i % HELD_OUT_EVERY == 0` are held out (their sessions are never fitted);
slots `== 1` pick the early-stopping epoch."""


def collect(world: dict[str, Any], seed: int, n_envs: int, steps: int) -> dict[str, np.ndarray]:
    """Impressions of a random policy: per feature set the model inputs, and the click,
    newcomer flag and session slot of each (content on, the world otherwise as given)."""
    env = LiveStreamVectorEnv(n_envs, config={**SMALL, **world, "content": {"mode": "text"}})
    obs, _ = env.reset(seed=seed)
    policy, core, d = RandomPolicy(1, seed=seed), env.core, env.core.cfg.topic_dim
    rows: dict[str, list[np.ndarray]] = {name: [] for name in (*FEATURE_SETS, "click", "new",
                                                               "slot")}
    n_stats = obs["candidates"].shape[2] - core.cfg.content.dim
    for _ in range(steps):
        action = policy.act(obs).actions
        s = core.streamers
        ids = core.cand_ids[np.arange(n_envs), action]
        ok = ids >= 0
        shown = np.maximum(ids, 0)
        weight = (s.clicks / (s.clicks + core.cfg.topic_evidence)
                  if core.cfg.topic_evidence > 0 else np.ones(len(s.clicks)))
        viewer, row = obs["viewer"], obs["candidates"][np.arange(n_envs), action]
        blocks = viewer[:, : 2 * d].reshape(n_envs, 2, d)

        def match(topic: np.ndarray, blocks=blocks) -> np.ndarray:
            return np.einsum("nbd,nd->nb", blocks, topic)

        platform = np.concatenate([match(s.topic[shown] * weight[shown, None]),
                                   row[:, 2:n_stats]], axis=1)
        oracle = np.concatenate([match(s.topic[shown]), row[:, 2:n_stats]], axis=1)
        for name, x in zip(FEATURE_SETS, (platform, row, oracle), strict=True):
            rows[name].append(np.concatenate([viewer, x], axis=1)[ok].astype(np.float32))
        is_new = (core.tick - s.born_tick[shown]) * core.cfg.step_minutes < NEW_STREAMER_MINUTES
        obs, _, _, _, info = env.step(action)
        rows["click"].append((info["clicked_id"] >= 0)[ok])
        rows["new"].append(is_new[ok])
        rows["slot"].append(np.arange(n_envs)[ok])
    env.close()
    return {k: np.concatenate(v) for k, v in rows.items()}


def fit_click_model(x: np.ndarray, y: np.ndarray, valid: np.ndarray, seed: int,
                    epochs: int = 400) -> torch.nn.Module:
    """A (64, 64) MLP with a logistic output, fitted full-batch with Adam on standardised
    inputs on the rows not in `valid`, and stopped early at the epoch with the lowest
    log-loss on the `valid` rows (so a feature set with more columns is not judged on
    its overfitting). The scaling is folded into the returned model."""
    torch.manual_seed(seed)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.float32)
    fit, check = torch.as_tensor(~valid), torch.as_tensor(valid)
    mean, std = xt[fit].mean(0), xt[fit].std(0).clamp_min(1e-6)
    net = torch.nn.Sequential(_Standardise(mean, std), torch.nn.Linear(x.shape[1], 64),
                              torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state = float("inf"), None
    for epoch in range(epochs):
        opt.zero_grad()
        loss_fn(net(xt[fit]).squeeze(1), yt[fit]).backward()
        opt.step()
        if epoch % 5 == 4:
            with torch.no_grad():
                score = float(loss_fn(net(xt[check]).squeeze(1), yt[check]))
            if score < best:
                best, best_state = score, {k: v.clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    return net


class _Standardise(torch.nn.Module):
    """Inputs scaled by the fitted rows' mean and standard deviation."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities `p` for labels `y`."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random click outscores a random non-click
    (ties count half), from average ranks."""
    order = np.argsort(score, kind="stable")
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]  # ties: mean rank
    pos = y.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / max(n_pos * n_neg, 1))


def probe_seed(world: dict[str, Any], seed: int, n_envs: int, steps: int
               ) -> dict[str, dict[str, float]]:
    """{feature set: {"log_loss", "auc"}} on held-out newcomer impressions of one seed."""
    data = collect(world, seed, n_envs, steps)
    held_out = data["slot"] % HELD_OUT_EVERY == 0
    valid = (data["slot"] % HELD_OUT_EVERY == 1)[~held_out]
    test = held_out & data["new"]
    y = data["click"].astype(np.float32)
    out = {}
    for name in FEATURE_SETS:
        model = fit_click_model(data[name][~held_out], y[~held_out], valid, seed)
        with torch.no_grad():
            p = torch.sigmoid(model(torch.as_tensor(data[name][test]))).squeeze(1).numpy()
        out[name] = {"log_loss": log_loss(p, y[test]), "auc": auc(p, y[test]),
                     "newcomer_impressions": int(test.sum())}
    return out


def run_probe(world: dict[str, Any], seeds: list[int], n_envs: int, steps: int
              ) -> dict[str, dict[str, Any]]:
    """Per feature set, and per paired difference from `stats only`, {metric: {"per_seed",
    "mean", "ci_low", "ci_high"}} over world seeds."""
    per_seed = [probe_seed(world, seed, n_envs, steps) for seed in seeds]
    results: dict[str, dict[str, Any]] = {}
    for name in FEATURE_SETS:
        results[name] = _summary({m: [r[name][m] for r in per_seed]
                                  for m in ("log_loss", "auc", "newcomer_impressions")})
    for name in FEATURE_SETS[1:]:
        results[f"{name} - stats only"] = _summary(
            {m: [r[name][m] - r["stats only"][m] for r in per_seed]
             for m in ("log_loss", "auc")})
    return results


def _summary(values: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    return {m: dict(zip(("mean", "ci_low", "ci_high"), mean_ci(v), strict=True),
                    per_seed=[float(x) for x in v]) for m, v in values.items()}


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| click model features | newcomer log-loss | newcomer AUC |", "|---|---|---|"]
    for name, r in results.items():
        cells = [f"{r[m]['mean']:.4f} [{r[m]['ci_low']:.4f}, {r[m]['ci_high']:.4f}]"
                 for m in ("log_loss", "auc")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default="newcomers", choices=tuple(WORLDS))
    p.add_argument("--topic-evidence", type=float, default=None,
                   help="env topic_evidence (default: the world's)")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=600, help="vector steps logged per seed")
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    world = dict(WORLDS[args.world])
    if args.topic_evidence is not None:
        world["topic_evidence"] = args.topic_evidence
    results = run_probe(world, [int(s) for s in args.seeds.split(",")], args.envs, args.steps)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
