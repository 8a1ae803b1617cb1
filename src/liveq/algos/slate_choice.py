"""The two halves of SlateQ that are not Q-learning: the choice model and slate optimisation.

Choice model (a conditional logit with position bias, as the simulator's viewer and the
SlateQ paper's general choice model assume). Shown a slate `A = (a_0, ..., a_{L-1})`, the
viewer opens the item at rank r, or nothing (the null item), with probability

    P(r | s, A) = exp(u(s, a_r) + b_r) / (1 + sum_j exp(u(s, a_j) + b_j))
    P(none | s, A) = 1 / (1 + sum_j exp(u(s, a_j) + b_j))

with `u(s, i) = w . x(s, i) + c` linear in the candidate's features and a rank bias
`b_0 = 0 >= b_1 >= b_2 ...` (non-increasing by construction: lower ranks are examined
less). The null item's utility is the reference 0, so `c` is "any item against nothing".
It is fit by maximum likelihood on logged (slate, opened rank or none) pairs.

Slate optimisation (exact). SlateQ's slate value is `sum_r P(r|s,A) Qbar(s, a_r) + P(none)
Qbar(s, none)`, a ratio `N(A) / D(A)` with `N = q0 + sum_r p_r e_{a_r} q_{a_r}`, `D = 1 +
sum_r p_r e_{a_r}` (`e_i = exp(u_i)`, `p_r = exp(b_r)`). The paper maximises such a
ratio exactly with a linear program; here the position weights are handled too, by
Dinkelbach's method: `max_A N(A) - lambda D(A)` is a sum of `p_r c_{a_r}` with `c_i =
e_i (q_i - lambda)`, which with non-increasing `p_r` the top `L` items by `c`, best first,
maximise (rearrangement inequality); iterating `lambda <- N(A) / D(A)` reaches the best
ratio in a few steps. `method="topk"` is the paper's cheap alternative: the top `L` by
`e_i q_i`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from liveq.policies.base import top_k_slate

DINKELBACH_STEPS = 50  # far more than needed: it stops when no row's slate changes
INITIAL_RANK_STEP = 0.1  # b_{r+1} - b_r at initialisation


class LogitChoiceModel(nn.Module):
    """`u(s, i) = w . x(s, i) + c` and the rank biases `b_r` of a slate of `slate_size`."""

    def __init__(self, n_features: int, slate_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_features))
        self.intercept = nn.Parameter(torch.zeros(()))
        start = float(np.log(np.expm1(INITIAL_RANK_STEP)))
        self.rank_steps = nn.Parameter(torch.full((max(slate_size - 1, 0),), start))

    def utilities(self, candidates: torch.Tensor) -> torch.Tensor:
        """`(batch, K)` item utilities from candidate features `(batch, K, F)`."""
        return candidates @ self.weight + self.intercept

    def rank_bias(self) -> torch.Tensor:
        """`(slate_size,)` non-increasing, 0 at the top rank."""
        steps = F.softplus(self.rank_steps)
        return torch.cat([steps.new_zeros(1), -torch.cumsum(steps, 0)])

    def slate_logits(self, utilities: torch.Tensor, slates: torch.Tensor,
                     shown: torch.Tensor) -> torch.Tensor:
        """`(batch, L + 1)` logits: column 0 the null item (0), column r + 1 rank r;
        -inf for ranks that showed nothing (`shown` False)."""
        item = utilities.gather(1, slates) + self.rank_bias()[: slates.shape[1]]
        item = item.masked_fill(~shown, float("-inf"))
        return torch.cat([item.new_zeros(len(item), 1), item], dim=1)

    def loss(self, candidates: torch.Tensor, slates: torch.Tensor, shown: torch.Tensor,
             clicked_rank: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the opened ranks (-1 = nothing)."""
        logits = self.slate_logits(self.utilities(candidates), slates, shown)
        return F.cross_entropy(logits, clicked_rank + 1)


def shown_ranks(slates: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`(batch, L)` True where the slate's rank held an allowed candidate (what the env
    showed: filled ranks beyond the allowed candidates are empty)."""
    safe = np.clip(slates, 0, mask.shape[1] - 1)
    return np.take_along_axis(mask.astype(bool), safe, axis=1) & (slates >= 0)


def slate_value(choice_probs: np.ndarray | torch.Tensor, item_q: np.ndarray | torch.Tensor,
                null_q: np.ndarray | torch.Tensor):
    """SlateQ's decomposition `Q(s, A) = P(none) Qbar(s, none) + sum_r P(r) Qbar(s, a_r)`:
    `choice_probs (batch, L + 1)` (column 0 = none), `item_q (batch, L)` the item values of
    the slate's ranks, `null_q (batch,)`."""
    return choice_probs[:, 0] * null_q + (choice_probs[:, 1:] * item_q).sum(1)


def _ratio(e: np.ndarray, q: np.ndarray, q0: np.ndarray, p: np.ndarray,
           slates: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """`N / D` of `slates (n, L)` with the ranks beyond `fill` empty."""
    w = np.take_along_axis(e, slates, axis=1) * p[None, :] * fill
    return (q0 + (w * np.take_along_axis(q, slates, axis=1)).sum(1)) / (1.0 + w.sum(1))


def best_slates(utilities: np.ndarray, item_q: np.ndarray, null_q: np.ndarray,
                rank_bias: np.ndarray, mask: np.ndarray,
                method: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """`(scores (n, K), values (n,))`: `top_k_slate(scores, L)` is the slate of
    `L = len(rank_bias)` that maximises the SlateQ value (`method="exact"`) or the top `L`
    by `e_i q_i` (`"topk"`); `values` is that slate's value. Masked candidates score -inf.

    utilities, item_q `(n, K)`; null_q `(n,)`; rank_bias `(L,)` non-increasing; mask
    `(n, K)` bool.
    """
    size = len(rank_bias)
    utilities, q = np.asarray(utilities, np.float64), np.asarray(item_q, np.float64)
    q0 = np.asarray(null_q, np.float64)
    e = np.exp(np.minimum(np.where(mask, utilities, 0.0), 700.0)) * mask
    p = np.exp(np.asarray(rank_bias, np.float64))
    fill = np.arange(size)[None, :] < mask.sum(axis=1)[:, None]
    if method == "topk":
        scores = np.where(mask, e * q, -np.inf)
        slates = top_k_slate(scores, size).actions.reshape(len(q), size)
        return scores, _ratio(e, q, q0, p, slates, fill)
    if method != "exact":
        raise ValueError(f"unknown slate optimisation '{method}', expected exact or topk")
    slates = top_k_slate(np.where(mask, q, -np.inf), size).actions.reshape(len(q), size)
    value = _ratio(e, q, q0, p, slates, fill)
    for _ in range(DINKELBACH_STEPS):  # value rises strictly until it is the best ratio
        scores = np.where(mask, e * (q - value[:, None]), -np.inf)
        new = top_k_slate(scores, size).actions.reshape(len(q), size)
        new_value = _ratio(e, q, q0, p, new, fill)
        better = new_value > value + 1e-12 * (1.0 + np.abs(value))
        if not better.any():
            break
        value = np.where(better, new_value, value)
    return np.where(mask, e * (q - value[:, None]), -np.inf), value
