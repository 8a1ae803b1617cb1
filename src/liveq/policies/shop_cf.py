"""Matrix-factorisation collaborative filtering for `liveq/Ecommerce-v0` (the `cf` baseline).

What a shop's data team would ship: factorise the session x product matrix of a log of
the same shop (clicks weigh 1, a purchase adds log(1 + price)) with a truncated SVD, fold
the current session's clicked products into a shopper vector, and rank candidates by
its dot product with their item vectors. A session with no clicks yet, and products the
log never saw (new arrivals), fall back to units sold, so cold start is handled the way
popular handles it.

The log is simulated on a copy of the evaluated shop (same config, same seed, so the
same catalogue) with popular plus 20% uniform exploration; the policy then reads the
candidates' and the session's product ids from the env's core (logged data a shop has,
not the shoppers' hidden tastes).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from liveq.policies.base import GreedyPolicy
from liveq.policies.explore import EpsilonGreedy
from liveq.policies.shop import most_sold_score
from liveq.sim.shop.env import EcommerceVectorEnv

LOG_SESSIONS, LOG_STEPS, RANK, EXPLORE = 256, 300, 8, 0.2


def session_item_matrix(env: EcommerceVectorEnv, seed: int | None,
                        steps: int = LOG_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """`(sessions, items)` weights and the items' lifetime ids, from a popular+explore log."""
    from liveq.policies.baselines import ScorePolicy

    rng = np.random.default_rng(seed)
    behaviour = EpsilonGreedy(ScorePolicy(most_sold_score, 1), EXPLORE, rng)
    obs, _ = env.reset(seed=seed)
    users, items, weights = [], [], []
    for _ in range(steps):
        obs, _, _, _, info = env.step(behaviour.act(obs).actions)
        hit = info["click"]
        users.append(info["shopper_id"][hit])
        items.append(info["item_id"][hit])
        weights.append(1.0 + np.log1p(info["purchase_value"][hit]))
    u, i, w = (np.concatenate(x) for x in (users, items, weights))
    user_ix = np.unique(u, return_inverse=True)[1]
    item_ids, item_ix = np.unique(i, return_inverse=True)
    matrix = np.zeros((user_ix.max() + 1 if len(u) else 0, len(item_ids)))
    np.add.at(matrix, (user_ix, item_ix), w)
    return matrix, item_ids


class CollaborativeFilteringPolicy(GreedyPolicy):
    """Truncated-SVD item vectors; scores = session fold-in . item, else units sold."""

    slate_size = 1

    def __init__(self, env: gym.vector.VectorEnv, seed: int | None, rank: int = RANK):
        self.core = env.unwrapped.core
        matrix, self.item_ids = session_item_matrix(
            EcommerceVectorEnv(LOG_SESSIONS, env.unwrapped.config), seed)
        _, sing, vt = np.linalg.svd(matrix, full_matrices=False)
        self.vectors = (vt[:rank].T * np.sqrt(sing[:rank]))  # (items, rank)

    def _vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """Item vectors of lifetime ids (zeros for ids the log never saw, or -1)."""
        pos = np.clip(np.searchsorted(self.item_ids, ids), 0, len(self.item_ids) - 1)
        known = (ids >= 0) & (self.item_ids[pos] == ids)
        return np.where(known[..., None], self.vectors[pos], 0.0)

    def scores(self, obs, mask=None) -> np.ndarray:
        shopper = self._vectors_of(self.core.clicked_items).sum(axis=1)  # (n, rank)
        cands = self._vectors_of(self.core.serial[self.core.candidates])  # (n, K, rank)
        cf = np.einsum("nr,nkr->nk", shopper, cands)
        score = cf * 1000.0 + most_sold_score(obs)
        return np.where(self.allowed(obs, mask), score, -np.inf)
