"""BPR matrix factorisation (Rendle et al., UAI 2009) for offline live-streaming ranking.

The score of streamer `i` for user `u` is `x_ui = <p_u, q_i> + b_i`. Each training row
(user `u` watched `i` from step `t`) is a positive; its negative `j` is drawn uniformly
among the *other* streamers live at `t` in the training rows (the LiveRec paper's
availability sampling, `sampling.py` `sample_av` in github.com/JRappaz/liverec), or
uniformly among all other streamers with `negatives="uniform"` or when `i` was the only
one live. The loss is `-log sigmoid(x_ui - x_uj)` plus L2 on the factors and biases in
the batch, minimised with Adam on the rows each batch touches (gradients written out,
`bpr_gradients`); negatives are redrawn every epoch.

Users without training rows get zero factors (their scores are the streamer biases) and
streamers without training rows get zero factors and the lowest bias seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from liveq.core.config import ConfigError
from liveq.data.log import InteractionLog, LogError
from liveq.ranking.availability import LiveIndex, live_index, slots
from liveq.ranking.queries import RankingQueries


@dataclass(kw_only=True)
class BPRConfig:
    """Settings of `BPRModel`."""

    dim: int = 32
    """Latent factors per user and per streamer."""
    epochs: int = 3
    """Passes over the training rows."""
    batch_size: int = 8192
    """Positive rows per gradient step."""
    lr: float = 0.01
    """Sparse Adam learning rate."""
    l2: float = 1e-5
    """Weight of the squared norm of the batch's factors and biases."""
    init_std: float = 0.1
    """Standard deviation of the initial factors (biases start at 0)."""
    negatives: Literal["live", "uniform"] = "live"
    """Negatives among the streamers live at the positive's step, or among all."""

    def validate(self) -> None:
        for name in ("dim", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"bpr.{name} must be at least 1")
        for name in ("lr", "init_std"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"bpr.{name} must be positive")
        if self.l2 < 0:
            raise ConfigError("bpr.l2 must be non-negative")
        if self.negatives not in ("live", "uniform"):
            raise ConfigError(f"bpr.negatives must be 'live' or 'uniform', got {self.negatives!r}")


def sample_negatives(item: np.ndarray, step: np.ndarray, n_items: int, live: LiveIndex | None,
                     rng: np.random.Generator) -> np.ndarray:
    """`(n,)` a streamer other than `item[r]` for each positive, uniform among those live
    at `step[r]` (among all `n_items` when `live` is None or `item[r]` was alone)."""
    other = np.floor(rng.random(len(item)) * (n_items - 1)).astype(np.int64)
    negative = other + (other >= item)
    if live is None:
        return negative
    slot, _ = slots(live, step)  # every positive's step is indexed: its own row is live
    first, last = live.offsets[slot], live.offsets[slot + 1]
    own = np.searchsorted(live.keys, slot * live.n_items + item) - first
    among = np.floor(rng.random(len(item)) * (last - first - 1)).astype(np.int64)
    among += among >= own
    crowded = last - first > 1
    negative[crowded] = live.items[first[crowded] + among[crowded]]
    return negative


class BPRGradients(NamedTuple):
    loss: torch.Tensor  # () the batch's mean loss
    user: torch.Tensor  # (batch, dim) d loss / d p_u
    positive: torch.Tensor  # (batch, dim) d loss / d q_i
    negative: torch.Tensor  # (batch, dim) d loss / d q_j
    positive_bias: torch.Tensor  # (batch,) d loss / d b_i
    negative_bias: torch.Tensor  # (batch,) d loss / d b_j


def bpr_gradients(p_u: torch.Tensor, q_i: torch.Tensor, q_j: torch.Tensor, b_i: torch.Tensor,
                  b_j: torch.Tensor, l2: float) -> BPRGradients:
    """The batch mean of `-log sigmoid(x_uij) + l2 * (|p_u|^2 + |q_i|^2 + |q_j|^2 + b_i^2 +
    b_j^2)` with `x_uij = <p_u, q_i - q_j> + b_i - b_j`, and its gradients written out
    (`d/dx -log sigmoid(x) = -sigmoid(-x)`); cheaper than autograd through sparse tables."""
    x = (p_u * (q_i - q_j)).sum(1) + b_i - b_j  # (batch,)
    norms = (p_u.square() + q_i.square() + q_j.square()).sum(1) + b_i.square() + b_j.square()
    loss = (-torch.nn.functional.logsigmoid(x) + l2 * norms).mean()
    scale = -torch.sigmoid(-x) / len(x)  # (batch,) d loss / d x_uij
    decay = 2.0 * l2 / len(x)
    column = scale[:, None]
    return BPRGradients(loss, column * (q_i - q_j) + decay * p_u, column * p_u + decay * q_i,
                        -column * p_u + decay * q_j, scale + decay * b_i, -scale + decay * b_j)


class LazyAdam:
    """Adam on the rows of a table that a batch touches; other rows and their moments
    wait (as torch's SparseAdam). Gradients of a row repeated in the batch are summed."""

    def __init__(self, table: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.table, self.lr, self.betas, self.eps = table, lr, betas, eps
        self.first, self.second = torch.zeros_like(table), torch.zeros_like(table)
        self.steps = 0

    def step(self, rows: torch.Tensor, grads: torch.Tensor) -> None:
        unique, inverse = torch.unique(rows, return_inverse=True)
        grad = torch.zeros(len(unique), self.table.shape[1]).index_add_(0, inverse, grads)
        beta1, beta2 = self.betas
        self.steps += 1
        first = self.first.index_select(0, unique).mul_(beta1).add_(grad, alpha=1 - beta1)
        second = self.second.index_select(0, unique).mul_(beta2).addcmul_(grad, grad,
                                                                          value=1 - beta2)
        self.first.index_copy_(0, unique, first)
        self.second.index_copy_(0, unique, second)
        corrected = (second / (1 - beta2 ** self.steps)).sqrt_().add_(self.eps)
        self.table.index_add_(0, unique, first.div_(corrected),
                              alpha=-self.lr / (1 - beta1 ** self.steps))


class BPRModel:
    """OfflineModel: BPR-MF trained on the training rows, scores `<p_u, q_i> + b_i`."""

    name = "bpr"

    def __init__(self, config: BPRConfig | None = None):
        self.config = config or BPRConfig()
        self.config.validate()
        self.user_factors = self.item_factors = self.item_bias = None

    def fit(self, train: InteractionLog, seed: int) -> None:
        if train.n_items < 2 or train.frame.height == 0:
            raise LogError(f"{train.source}: BPR needs training rows and two streamers")
        rng = np.random.default_rng(seed)
        user = train.frame["user"].to_numpy().astype(np.int64)
        item = train.frame["item"].to_numpy().astype(np.int64)
        step = train.frame["start"].to_numpy().astype(np.int64)
        live = live_index(train.frame, train.n_items) if self.config.negatives == "live" else None
        tables = self._init(train.n_users, train.n_items, torch.Generator().manual_seed(seed))
        optimizers = [LazyAdam(t, self.config.lr) for t in tables]
        for _ in range(self.config.epochs):
            negative = sample_negatives(item, step, train.n_items, live, rng)
            order = rng.permutation(len(user))
            for first in range(0, len(order), self.config.batch_size):
                batch = order[first:first + self.config.batch_size]
                self._step(tables, optimizers, user[batch], item[batch], negative[batch])
        self._keep(tables, np.unique(user), np.unique(item))

    def _init(self, n_users: int, n_items: int, generator: torch.Generator):
        dim, std = self.config.dim, self.config.init_std
        return (torch.randn(n_users, dim, generator=generator) * std,
                torch.randn(n_items, dim, generator=generator) * std, torch.zeros(n_items, 1))

    def _step(self, tables, optimizers, user: np.ndarray, item: np.ndarray,
              negative: np.ndarray) -> None:
        users, items, biases = tables
        u, i, j = (torch.from_numpy(a) for a in (user, item, negative))
        b_i, b_j = biases.index_select(0, i)[:, 0], biases.index_select(0, j)[:, 0]
        grads = bpr_gradients(users.index_select(0, u), items.index_select(0, i),
                              items.index_select(0, j), b_i, b_j, self.config.l2)
        pair = torch.cat([i, j])
        optimizers[0].step(u, grads.user)
        optimizers[1].step(pair, torch.cat([grads.positive, grads.negative]))
        optimizers[2].step(pair, torch.cat([grads.positive_bias, grads.negative_bias])[:, None])

    def _keep(self, tables, seen_users: np.ndarray, seen_items: np.ndarray) -> None:
        users, items, biases = (t.numpy().copy() for t in tables)
        unseen_user = np.ones(len(users), dtype=bool)
        unseen_user[seen_users] = False
        unseen_item = np.ones(len(items), dtype=bool)
        unseen_item[seen_items] = False
        users[unseen_user] = 0.0
        items[unseen_item] = 0.0
        bias = biases[:, 0]
        bias[unseen_item] = bias[seen_items].min()
        self.user_factors, self.item_factors, self.item_bias = users, items, bias

    def score(self, queries: RankingQueries, block: int = 1 << 18) -> np.ndarray:
        if self.user_factors is None:
            raise RuntimeError("BPRModel.score called before fit")
        query = queries.query_of_candidate()
        scores = np.empty(len(queries.cand_item), dtype=np.float64)
        for first in range(0, len(scores), block):
            users = queries.user[query[first:first + block]]
            items = queries.cand_item[first:first + block]
            scores[first:first + block] = np.einsum(
                "cd,cd->c", self.user_factors[users], self.item_factors[items]
            ) + self.item_bias[items]
        return scores
