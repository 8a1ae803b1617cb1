"""Baselines of the e-commerce scenario (`liveq/Ecommerce-v0`), by the shop's observation.

`popular` recommends the in-stock candidate with the most units sold so far (what a shop
without personalisation shows); `rating` the best-rated one; `random` any in-stock one;
`cf` matrix-factorisation collaborative filtering (`liveq.policies.shop_cf`).
`baselines_for(env_id)` gives `liveq compare` the table that fits an env.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from liveq.policies.baselines import BASELINES, RandomPolicy, ScorePolicy
from liveq.sim.shop import ECOMMERCE_ID
from liveq.sim.shop.core import CANDIDATE_FIXED

# Offsets from the end of a candidate row (the category one-hot comes first).
_RATING, _SOLD = 2 - CANDIDATE_FIXED, 5 - CANDIDATE_FIXED


def most_sold_score(obs: dict) -> np.ndarray:
    """Units sold so far (log), the rating breaking ties."""
    cand = obs["candidates"].astype(np.float64)
    return cand[:, :, _SOLD] * 100.0 + cand[:, :, _RATING]


def rating_score(obs: dict) -> np.ndarray:
    """The shown rating (a noisy view of quality)."""
    return obs["candidates"][:, :, _RATING].astype(np.float64)


SHOP_BASELINES: dict[str, Callable[[gym.vector.VectorEnv, int | None], object]] = {
    "random": lambda env, seed: RandomPolicy(1, seed),
    "popular": lambda env, seed: ScorePolicy(most_sold_score, 1),
    "rating": lambda env, seed: ScorePolicy(rating_score, 1),
    "cf": lambda env, seed: _cf(env, seed),
}


def _cf(env: gym.vector.VectorEnv, seed: int | None):
    from liveq.policies.shop_cf import CollaborativeFilteringPolicy
    return CollaborativeFilteringPolicy(env, seed)


def baselines_for(env_id: str) -> dict[str, Callable[[gym.vector.VectorEnv, int | None], object]]:
    """The baselines that fit `env_id`: the shop's for Ecommerce, LiveStream's otherwise."""
    return SHOP_BASELINES if env_id == ECOMMERCE_ID else BASELINES
