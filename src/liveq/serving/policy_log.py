"""One decision: retrieval, features, the serving policy's draw and what the log keeps.

`decide` returns the shown slate with exact probabilities and the decision's log row:
the full candidate table, the features the policy saw, every candidate's score and
per-rank probability (numpy arrays, packed as they are into the log), the slate and its
probability.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from liveq.core.errors import UsageError
from liveq.serving.model import ServedModel, serving_policy
from liveq.serving.observe import Catalogue, candidate_table, observation
from liveq.serving.viewers import ViewerState


def decision_rng(decision_id: str) -> np.random.Generator:
    """The decision's random draws (retrieval and exploration), seeded by its id."""
    return np.random.default_rng(int(decision_id[:16], 16))

def log_draw(decision_id: str) -> float:
    """The decision's uniform draw in [0, 1) for `--log-sample` (from the id's second
    half, so whether a decision was logged in full can be replayed)."""
    return int(decision_id[16:32], 16) / 16 ** 16


def arm_of(viewer_id: str, arms: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The viewer's sticky arm: SHA-256 of the id read as a number in [0, 1), against the
    arms' cumulative shares (None when there is no split)."""
    if not arms:
        return None
    u = int(hashlib.sha256(viewer_id.encode()).hexdigest()[:15], 16) / 16 ** 15
    total = 0.0
    for arm in arms:
        total += arm["share"]
        if u < total:
            return arm
    return arms[-1]

def finite_or_none(value: float) -> float | None:
    """A score as the answer and the log give it: None when it is not finite."""
    return float(value) if np.isfinite(value) else None

def decide(model: ServedModel, catalogue: Catalogue, state: ViewerState, k: int,
           exploration: dict[str, Any], decision_id: str, clock: float) -> dict[str, Any]:
    """The decision's fields: candidates, features, scores, probabilities and slate."""
    rng = decision_rng(decision_id)
    rows = candidate_table(model.settings, catalogue, state, rng)
    obs = observation(model.settings, catalogue, state, rows, clock)
    n_allowed = int((rows >= 0).sum())
    size = max(1, min(k, n_allowed))
    policy = serving_policy(model, size, exploration, rng)
    action = policy.act(obs)
    slate = np.asarray(action.actions).reshape(-1)[:min(k, n_allowed)]
    scores = policy.base.scores(obs)[0]
    try:
        probs = np.asarray(policy.probabilities(obs))[0].reshape(size, -1)
        item_probs = [float(probs[r, c]) for r, c in enumerate(slate)]
    except UsageError:  # softmax slates too large to enumerate; scores rebuild them
        probs, item_probs = None, None
    ids = [catalogue.ids[r] if r >= 0 else None for r in rows.tolist()]
    scores = np.asarray(scores, np.float64)
    return {  # arrays as they are: the log packs them (`liveq.serving.packed`)
        "candidates": ids,
        "features": {"viewer": obs["viewer"][0], "candidates": obs["candidates"][0],
                     "mask": obs["mask"][0]},
        "scores": np.where(np.isfinite(scores), scores, np.nan),  # NaN: logged as null
        "probabilities": probs,
        "slate": [ids[c] for c in slate.tolist()],
        "slate_positions": slate.tolist(),
        "slate_probability": float(action.propensities[0]) if n_allowed else 1.0,
        "item_probabilities": item_probs if n_allowed else [],
    }
