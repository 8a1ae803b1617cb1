"""Ranking models learned from logged interactions only: offline DQN, behaviour cloning, bandit.

No simulator: transitions come from the training log (`liveq.ranking.logq_data`). Each
state's action set is the logged streamer plus up to `negatives` distinct streamers
sampled among those live at that step (all of them where no more are live), and one
item-conditioned network scores every candidate (the live set changes every step, so
there is no output unit per streamer):

    code(s)  = relu(W [mean(emb(history)), emb(last item), clock features])
    Q(s, a)  = head(relu(A code(s) + B emb(a) + C features(s, a))) + <P code(s) + p, emb(a)>

`features(s, a)` are what matters in live streaming: how often and how recently the user
watched `a` (repeat consumption), whether `a` is the last streamer watched, and how many
other users watch `a` right now. Items with fewer than `min_item_count` training
interactions share one *unknown* embedding (trained by replacing a random share of ids
with it), so cold-start users and items still get scores from those features.

Objectives, all with the logged action in column 0 of the candidate set:

* `"dqn"`:    huber(Q(s, a), r + gamma Q_target(s', argmax Q(s', .))) + cql_alpha * CQL
  (double DQN with a Polyak-averaged target network and the conservative penalty);
* `"bandit"`: the same with gamma = 0 (immediate-reward regression + CQL);
* `"bc"`:     cross-entropy of the logged action over the candidates.

A model ranks a query's live candidates by Q (or by the BC logits). Over one candidate
set the CQL term *is* the BC cross-entropy, and an organic log has no negative rewards
(every logged step is a chosen stream), so what "dqn" adds to "bc" is the TD term: a
preference for streams that lead to longer sessions, which next-stream hit rates do not
reward. Expect dqn <= bc on HR@k; a larger `cql_alpha` moves dqn towards bc.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from liveq.algos.dqn import td_target
from liveq.algos.offline_loss import bc_cross_entropy, cql_penalty
from liveq.core.config import ConfigError, require
from liveq.data.log import InteractionLog, LogError
from liveq.nets.q_networks import mlp
from liveq.ranking import logq_data as data
from liveq.ranking.availability import live_index
from liveq.ranking.queries import RankingQueries

OBJECTIVES = ("dqn", "bc", "bandit")
SCORE_CHUNK = 262_144  # candidates scored per forward pass


@dataclass(kw_only=True)
class LoggedQConfig:
    """Hyper-parameters of the logged-Q ranking models (dqn, bc, bandit)."""

    history: int = 16
    """Past interactions in the state (the query's history window)."""
    embedding_dim: int = 32
    """Width of the item embeddings."""
    state_dim: int = 64
    """Width of the history encoder's output."""
    hidden_sizes: list[int] = field(default_factory=lambda: [64])
    """Hidden widths of the per-candidate head (the first joins state, item and features)."""
    negatives: int = 32
    """Live streamers sampled beside the logged one in each training state."""
    gamma: float = 0.9
    """Discount per interaction for "dqn" ("bandit" always uses 0)."""
    cql_alpha: float = 1.0
    """Weight of the conservative penalty for "dqn" and "bandit"."""
    tau: float = 0.01
    """Polyak rate of the target network after every gradient step; 1 = hard copy."""
    lr: float = 3e-3
    """Adam learning rate."""
    batch_size: int = 256
    """Transitions per gradient step."""
    epochs: float = 2.0
    """Passes over the training transitions, capped by `max_gradient_steps`."""
    max_gradient_steps: int = 3000
    """Upper bound on gradient steps, whatever the log's size."""
    max_gap_minutes: float = 1440.0
    """A next interaction starting later than this after the last one stops starts a new
    episode (the previous transition is terminal)."""
    watch_reward: float = 0.0
    """Reward per interaction is `1 + watch_reward * log1p(minutes watched)`."""
    min_item_count: int = 2
    """Items with fewer training interactions share the unknown-item embedding."""
    unknown_item_rate: float = 0.05
    """Share of item ids replaced by the unknown id during training (trains it)."""
    max_grad_norm: float = 10.0
    """Clip the gradient's global norm to this; 0 disables clipping."""

    def validate(self) -> None:
        for name in ("history", "embedding_dim", "state_dim", "negatives", "batch_size",
                     "max_gradient_steps", "min_item_count"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1, got "
                    f"{getattr(self, name)}")
        require(len(self.hidden_sizes) >= 1 and min(self.hidden_sizes) >= 1,
                f"hidden_sizes must be a non-empty list of positive widths, got "
                f"{self.hidden_sizes}")
        require(0.0 <= self.gamma < 1.0, f"gamma must be in [0, 1), got {self.gamma}")
        require(self.cql_alpha >= 0, f"cql_alpha must be >= 0, got {self.cql_alpha}")
        require(0.0 < self.tau <= 1.0, f"tau must be in (0, 1], got {self.tau}")
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.epochs > 0, f"epochs must be positive, got {self.epochs}")
        require(self.max_gap_minutes > 0, f"max_gap_minutes must be positive, got "
                f"{self.max_gap_minutes}")
        require(self.watch_reward >= 0, f"watch_reward must be >= 0, got {self.watch_reward}")
        require(0.0 <= self.unknown_item_rate < 1.0, f"unknown_item_rate must be in [0, 1), "
                f"got {self.unknown_item_rate}")
        require(self.max_grad_norm >= 0, f"max_grad_norm must be >= 0, got "
                f"{self.max_grad_norm}")


class CandidateBatch(NamedTuple):
    """States and their candidates, flat; candidate `j` belongs to state `query[j]`."""

    history: torch.Tensor  # (n, H) int64 embedding rows, most recent last, padding on the left
    state: torch.Tensor  # (n, len(STATE_FEATURES)) float32
    query: torch.Tensor  # (total,) int64
    item: torch.Tensor  # (total,) int64 embedding rows
    features: torch.Tensor  # (total, len(CANDIDATE_FEATURES)) float32


class LoggedQNetwork(nn.Module):
    """Item-conditioned Q(s, a) for any set of candidates (see the module docstring)."""

    def __init__(self, n_embedded: int, config: LoggedQConfig):
        super().__init__()
        d, width = config.embedding_dim, config.hidden_sizes[0]
        self.pad = n_embedded + 1  # row n_embedded is the unknown item
        self.embedding = nn.Embedding(n_embedded + 2, d, padding_idx=self.pad)
        self.encoder = nn.Sequential(
            nn.Linear(2 * d + len(data.STATE_FEATURES), config.state_dim), nn.ReLU())
        self.width = width
        # one projection of the state code: the head's first-layer part, then a query
        # vector in item space (its bias doubles as a learned item popularity direction)
        self.from_state = nn.Linear(config.state_dim, width + d)
        self.from_item = nn.Linear(d, width, bias=False)
        self.from_features = nn.Linear(len(data.CANDIDATE_FEATURES), width, bias=False)
        self.head = mlp(width, config.hidden_sizes[1:], 1)

    def encode(self, history: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """`(n, state_dim)` code of each state."""
        emb = self.embedding(history)  # (n, H, d), zero where padded
        filled = (history != self.pad).sum(dim=1, keepdim=True).clamp(min=1)
        return self.encoder(torch.cat([emb.sum(dim=1) / filled, emb[:, -1], state], dim=1))

    def forward(self, batch: CandidateBatch) -> torch.Tensor:
        """`(total,)` Q-values of the candidates."""
        code = self.encode(batch.history, batch.state)  # (n, state_dim)
        per_state = self.from_state(code).index_select(0, batch.query)  # (total, width + d)
        emb = self.embedding(batch.item)  # (total, d)
        hidden = F.relu(per_state[:, :self.width] + self.from_item(emb)
                        + self.from_features(batch.features))
        affinity = (per_state[:, self.width:] * emb).sum(dim=1)
        return self.head(hidden).squeeze(1) + affinity


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def embedding_rows(item_counts: np.ndarray, min_count: int) -> tuple[np.ndarray, int]:
    """Embedding row of each item id `(n_items,)` and the number `m` of embedded items:
    items seen at least `min_count` times get rows 0..m-1 in id order, the others row `m`
    (unknown); row `m + 1` is the padding of short histories."""
    known = item_counts >= min_count
    m = int(known.sum())
    return np.where(known, np.cumsum(known) - 1, m).astype(np.int64), m


def gradient_steps(n_transitions: int, config: LoggedQConfig) -> int:
    """`min(max_gradient_steps, ceil(epochs * n / batch_size))`."""
    wanted = math.ceil(config.epochs * n_transitions / config.batch_size)
    return max(1, min(config.max_gradient_steps, wanted))


def batch_rows(n: int, batch_size: int, steps: int,
               rng: np.random.Generator) -> Iterator[np.ndarray]:
    """`steps` batches of row indices, walking through successive random permutations."""
    order, at = rng.permutation(n), 0
    for _ in range(steps):
        if at + batch_size > n:
            order, at = np.r_[order[at:], rng.permutation(n)], 0
        yield order[at:at + batch_size]
        at += batch_size


class LoggedQModel:
    """An `OfflineModel` (`liveq.ranking.queries`) trained with one of `OBJECTIVES`."""

    def __init__(self, objective: str, config: LoggedQConfig | None = None):
        if objective not in OBJECTIVES:
            raise ConfigError(f"unknown logged-Q objective '{objective}'; expected one of "
                              f"{', '.join(OBJECTIVES)}")
        self.name = objective
        self.config = config if config is not None else LoggedQConfig()
        self.config.validate()
        self.net: LoggedQNetwork | None = None
        self.rows = np.zeros(0, np.int64)  # (n_items,) embedding row per item id
        self.n_embedded = 0  # items with their own embedding; row n_embedded = unknown
        self.step_minutes = 1.0
        self.losses: list[float] = []  # training loss per gradient step

    @property
    def gamma(self) -> float:
        return 0.0 if self.name == "bandit" else self.config.gamma

    def fit(self, train: InteractionLog, seed: int) -> None:
        """Train on every interaction of `train` from a fresh network; seeded, 1 thread."""
        if train.frame.height == 0:
            raise LogError(f"{train.source}: the training log has no interactions")
        c = self.config
        init_seq, data_seq = np.random.SeedSequence(seed).spawn(2)
        live = live_index(train.frame, train.n_items)
        gap_steps = c.max_gap_minutes / train.step_minutes
        trans = data.build_transitions(train, live, max_gap_steps=gap_steps,
                                       watch_reward=c.watch_reward)
        counts = np.bincount(trans.item, minlength=train.n_items)
        self.rows, self.n_embedded = embedding_rows(counts, c.min_item_count)
        self.step_minutes = train.step_minutes
        with _single_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(init_seq.generate_state(1)[0]))
            self.net = LoggedQNetwork(self.n_embedded, c)
            _Trainer(self, trans, live, np.random.default_rng(data_seq)).run()

    def score(self, queries: RankingQueries) -> np.ndarray:
        """`(total,)` float64 Q-values (BC: logits) of `queries.cand_item`."""
        if self.net is None:
            raise RuntimeError(f"model '{self.name}': call fit() before score()")
        out = np.empty(len(queries.cand_item), np.float64)
        with _single_thread(), torch.no_grad():
            for lo, hi in _query_chunks(queries.offsets, SCORE_CHUNK):
                start, stop = queries.offsets[lo], queries.offsets[hi]
                local = np.repeat(np.arange(hi - lo), np.diff(queries.offsets[lo:hi + 1]))
                history, history_time = data.left_align(queries.history[lo:hi],
                                                        queries.history_time[lo:hi])
                batch = self.batch(history, history_time, queries.time[lo:hi], local,
                                   queries.cand_item[start:stop],
                                   queries.cand_viewers[start:stop])
                out[start:stop] = self.net(batch).numpy()
        return out

    def batch(self, history: np.ndarray, history_time: np.ndarray, time: np.ndarray,
              query: np.ndarray, cand_item: np.ndarray, cand_viewers: np.ndarray,
              rng: np.random.Generator | None = None) -> CandidateBatch:
        """Features and embedding rows for the network; `rng` drops ids to unknown."""
        hist_rows = self._rows_of(history, rng)
        cand_rows = self._rows_of(cand_item, rng)
        return CandidateBatch(
            torch.from_numpy(hist_rows),
            torch.from_numpy(data.state_features(history, history_time, time,
                                                 self.step_minutes)),
            torch.from_numpy(query.astype(np.int64)),
            torch.from_numpy(cand_rows),
            torch.from_numpy(data.candidate_features(history, history_time, time, query,
                                                     cand_item, cand_viewers,
                                                     self.step_minutes)),
        )

    def _rows_of(self, items: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Embedding rows of item ids: -1 -> padding, ids unseen in training -> unknown."""
        unknown, n_items = self.n_embedded, len(self.rows)
        rows = np.where(items >= n_items, unknown, self.rows[items.clip(0, n_items - 1)])
        if rng is not None and self.config.unknown_item_rate > 0:
            rows = np.where(rng.random(items.shape) < self.config.unknown_item_rate,
                            unknown, rows)
        return np.where(items < 0, unknown + 1, rows)


def _query_chunks(offsets: np.ndarray, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive query ranges `[lo, hi)` with about `size` candidates each (at least one)."""
    n, lo = len(offsets) - 1, 0
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + size, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi


class _Trainer:
    """The gradient-step loop of one `LoggedQModel.fit`."""

    def __init__(self, model: LoggedQModel, trans: data.LoggedTransitions,
                 live: data.LiveIndex, rng: np.random.Generator):
        self.model, self.trans, self.live, self.rng = model, trans, live, rng
        self.net = model.net
        self.bootstrap = model.name != "bc" and model.gamma > 0
        self.target = copy.deepcopy(self.net).requires_grad_(False) if self.bootstrap else None
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=model.config.lr)

    def run(self) -> None:
        c = self.model.config
        steps = gradient_steps(len(self.trans.item), c)
        self.model.losses = []
        for rows in batch_rows(len(self.trans.item), c.batch_size, steps, self.rng):
            loss = self.loss(rows)
            self.optimizer.zero_grad()
            loss.backward()
            if c.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.max_grad_norm)
            self.optimizer.step()
            if self.target is not None:
                with torch.no_grad():
                    for target, online in zip(self.target.parameters(), self.net.parameters(),
                                              strict=True):
                        target.lerp_(online, c.tau)
            self.model.losses.append(loss.item())

    def candidates(self, rows: np.ndarray) -> tuple[CandidateBatch, torch.Tensor]:
        """States of `rows` with the logged item (column 0) and sampled live items:
        the batch and its `(n, 1 + negatives)` validity mask (repeated samples and
        samples of the logged item are masked out)."""
        t, k = self.trans, self.model.config.negatives
        time = t.start[rows]
        neg_items, neg_viewers, distinct = data.sample_live(self.live, time, k, self.rng)
        cand = np.concatenate([t.item[rows][:, None], neg_items], axis=1)  # (n, 1 + k)
        viewers = np.concatenate([t.viewers[rows][:, None], neg_viewers], axis=1)
        mask = np.ones(cand.shape, bool)
        mask[:, 1:] = distinct & (neg_items != t.item[rows][:, None])
        history, history_time = data.history_of(t, rows, self.model.config.history)
        query = np.repeat(np.arange(len(rows)), cand.shape[1])
        batch = self.model.batch(history, history_time, time, query, cand.ravel(),
                                 viewers.ravel(), self.rng)
        return batch, torch.from_numpy(mask)

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        batch, mask = self.candidates(rows)
        q = self.net(batch).view(mask.shape)  # (n, 1 + negatives)
        taken = torch.zeros(len(rows), dtype=torch.long)
        if self.model.name == "bc":
            return bc_cross_entropy(q, mask, taken)
        reward = torch.from_numpy(self.trans.reward[rows])
        target = self.td_target(rows, reward) if self.bootstrap else reward
        td = F.smooth_l1_loss(q[:, 0], target)
        return td + self.model.config.cql_alpha * cql_penalty(q, mask, taken)

    def td_target(self, rows: np.ndarray, reward: torch.Tensor) -> torch.Tensor:
        """Double-DQN target over a fresh candidate sample of each next state."""
        next_row = self.trans.next_row[rows]
        done = torch.from_numpy((next_row < 0).astype(np.float32))
        next_batch, next_mask = self.candidates(np.where(next_row >= 0, next_row, rows))
        with torch.no_grad():
            q_online = self.net(next_batch).view(next_mask.shape)
            q_target = self.target(next_batch).view(next_mask.shape)
            return td_target(reward, done, self.model.gamma, q_target, q_online, next_mask)
