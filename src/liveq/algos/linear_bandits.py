"""Linear contextual bandits: LinUCB (Li et al. 2010) and linear Thompson sampling
(Agrawal and Goyal 2013), strong one-step baselines.

One shared linear model scores every candidate from its pair features

    x[b, k] = concat(1, viewer[b], candidates[b, k])        # (d,) = 1 + viewer + candidate

and learns the immediate reward by ridge regression (the "shared" LinUCB of Li et al.,
not one model per arm): the candidate set of LiveStream changes every step and streamers
come and go, so a model per arm would never see most arms twice, while one model over
the candidate's features generalises to streamers it has never seen. The viewer part
adds the same amount to every candidate of a row; it explains reward variance between
viewers, and the ranking within a row comes from the candidate's own and pair features
(topic match, followed, estimated CTR, ...). With `interactions` the outer product
viewer x candidate is appended, so the model can weigh candidate features differently
for different viewers (d grows to about 280 on LiveStream).

The sufficient statistics, over every transition `(x, r)` learned from so far:

    A = l2 I + sum x x^T        b = sum r x        theta = A^-1 b        (ridge estimate)

are kept in float64 and `A` is re-factored by Cholesky (`A = L L^T`) after each update;
nothing is ever inverted explicitly. Then

* LinUCB scores `x^T theta + alpha sqrt(x^T A^-1 x)`, with `sqrt(x^T A^-1 x) =
  ||L^-1 x||`, and recommends the argmax (deterministic: a one-hot distribution);
* Thompson sampling draws `theta~ ~ N(theta, v^2 A^-1)` (`theta + v L^-T z`, z standard
  normal) and recommends the argmax of `x^T theta~`. The argmax distribution of a
  Gaussian score vector has no closed form, so the policy estimates it with `mc_draws`
  posterior draws (the same draws for every row, drawn from a generator keyed by the
  learner's seed and update count, so the distribution is a deterministic function of
  the learner's state) and `act` samples from that estimate: the propensity it reports
  is exactly the probability `probabilities` gives, at the price of `1 / mc_draws`
  resolution (a candidate that no draw puts first has probability 0 and is never shown).

The greedy policy of both (evaluation and serving) is the argmax of the ridge estimate
`x^T theta`; exploration lives only in the behaviour policy. Both train through the
online loop (one update per vector step, from that step's transitions) on any env
whose observation is the LiveStream dict (`viewer`, `candidates`, `mask`) with one item
per step; ranked slates are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from scipy.linalg import cho_solve, solve_triangular

from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, require
from liveq.core.errors import CheckpointError
from liveq.policies.base import Action, GreedyPolicy, Obs, action_mask, as_slates


@dataclass(kw_only=True)
class LinUCBConfig:
    """Hyper-parameters of LinUCB."""

    alpha: float = 1.0
    """Exploration width: the upper bound is x^T theta + alpha sqrt(x^T A^-1 x); 0 = greedy."""
    l2: float = 1.0
    """Ridge penalty: A starts as l2 times the identity (the prior precision)."""
    interactions: bool = False
    """Append the outer product viewer x candidate to the features (a per-viewer weighting)."""

    def validate(self) -> None:
        require(self.alpha >= 0.0, f"alpha must be >= 0, got {self.alpha}")
        require(self.l2 > 0.0, f"l2 must be > 0, got {self.l2}")


@dataclass(kw_only=True)
class LinearTSConfig:
    """Hyper-parameters of linear Thompson sampling."""

    v: float = 0.5
    """Posterior scale: theta is drawn from N(theta_hat, v^2 A^-1); 0 = greedy."""
    l2: float = 1.0
    """Ridge penalty: A starts as l2 times the identity (the prior precision)."""
    interactions: bool = False
    """Append the outer product viewer x candidate to the features (a per-viewer weighting)."""
    mc_draws: int = 256
    """Posterior draws that estimate the argmax distribution (its resolution is 1 / this)."""

    def validate(self) -> None:
        require(self.v >= 0.0, f"v must be >= 0, got {self.v}")
        require(self.l2 > 0.0, f"l2 must be > 0, got {self.l2}")
        require(self.mc_draws >= 1, f"mc_draws must be >= 1, got {self.mc_draws}")


def pair_features(obs: Obs, interactions: bool = False) -> np.ndarray:
    """`(n_envs, K, d)` float64: concat(1, viewer, candidate[, viewer x candidate])."""
    viewer = np.asarray(obs["viewer"], dtype=np.float64)  # (n, V)
    cands = np.asarray(obs["candidates"], dtype=np.float64)  # (n, K, C)
    n, k = cands.shape[:2]
    parts = [np.ones((n, k, 1)), np.broadcast_to(viewer[:, None, :], (n, k, viewer.shape[1])),
             cands]
    if interactions:
        parts.append(np.einsum("nv,nkc->nkvc", viewer, cands).reshape(n, k, -1))
    return np.concatenate(parts, axis=2)


def feature_dim(obs_space: gym.spaces.Dict, interactions: bool) -> int:
    """d of `pair_features` for observations of `obs_space`."""
    v = int(np.prod(obs_space["viewer"].shape))
    c = int(obs_space["candidates"].shape[-1])
    return 1 + v + c + (v * c if interactions else 0)


class RidgeModel:
    """`A`, `b` and the Cholesky factor of `A`: the posterior of a Bayesian linear model."""

    def __init__(self, dim: int, l2: float):
        self.A = l2 * np.eye(dim)  # (d, d)
        self.b = np.zeros(dim)  # (d,)
        self.refactor()

    def refactor(self) -> None:
        """Recompute `L` (A = L L^T) and `theta = A^-1 b` from the statistics."""
        self.L = np.linalg.cholesky(self.A)
        self.theta = cho_solve((self.L, True), self.b)

    def add(self, x: np.ndarray, r: np.ndarray) -> None:
        """Learn from rows `x` `(n, d)` with rewards `r` `(n,)`."""
        self.A += x.T @ x
        self.b += x.T @ r
        self.refactor()

    def mean(self, x: np.ndarray) -> np.ndarray:
        """`x^T theta` over the last axis of `x` `(..., d)`."""
        return x @ self.theta

    def width(self, x: np.ndarray) -> np.ndarray:
        """`sqrt(x^T A^-1 x)` over the last axis of `x` `(..., d)`."""
        flat = x.reshape(-1, x.shape[-1])
        z = solve_triangular(self.L, flat.T, lower=True)  # (d, N): L^-1 x
        return np.sqrt(np.sum(z * z, axis=0)).reshape(x.shape[:-1])

    def draws(self, normals: np.ndarray, scale: float) -> np.ndarray:
        """`(d, M)` posterior directions `scale L^-T z` for standard normals `(M, d)`:
        `theta + draws[:, m]` is distributed as N(theta, scale^2 A^-1)."""
        return scale * solve_triangular(self.L, normals.T, lower=True, trans="T")

    def copy(self) -> RidgeModel:
        twin = RidgeModel.__new__(RidgeModel)
        twin.A, twin.b, twin.L, twin.theta = (a.copy() for a in (self.A, self.b, self.L,
                                                                 self.theta))
        return twin


def ucb_scores(model: RidgeModel, x: np.ndarray, alpha: float) -> np.ndarray:
    """LinUCB's upper confidence bound `x^T theta + alpha sqrt(x^T A^-1 x)`."""
    return model.mean(x) + alpha * model.width(x)


class LinearScorePolicy(GreedyPolicy):
    """Argmax over allowed candidates of the ridge estimate, plus `alpha` times the
    confidence width (LinUCB when alpha > 0, the greedy policy when 0)."""

    slate_size = 1

    def __init__(self, model: RidgeModel, alpha: float, interactions: bool):
        self.model, self.alpha, self.interactions = model, alpha, interactions

    def scores(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        x = pair_features(obs, self.interactions)
        values = ucb_scores(self.model, x, self.alpha) if self.alpha else self.model.mean(x)
        return np.where(self.allowed(obs, mask), values, -np.inf)


class ThompsonPolicy:
    """Linear Thompson sampling with its argmax distribution estimated from fixed draws.

    `normals` `(M, d)` are the standard normal draws of this version of the model; the
    distribution of row i is the share of the M posterior draws whose argmax over the
    allowed candidates is k. `act` samples from it with `rng`.
    """

    slate_size = 1

    def __init__(self, model: RidgeModel, v: float, interactions: bool, normals: np.ndarray,
                 rng: np.random.Generator):
        self.model, self.v, self.interactions = model, v, interactions
        self.normals, self.rng = normals, rng

    def allowed(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        return action_mask(obs, mask, obs["candidates"].shape[1])

    def probabilities(self, obs: Obs, mask: np.ndarray | None = None) -> np.ndarray:
        """`(n_envs, K)`: share of posterior draws whose argmax is each candidate."""
        allowed = self.allowed(obs, mask)
        x = pair_features(obs, self.interactions)  # (n, K, d)
        n, k, m = x.shape[0], x.shape[1], len(self.normals)
        sampled = self.model.mean(x)[:, :, None] + x @ self.model.draws(self.normals, self.v)
        winners = np.argmax(np.where(allowed[:, :, None], sampled, -np.inf), axis=1)  # (n, M)
        counts = np.zeros((n, k))
        np.add.at(counts, (np.repeat(np.arange(n), m), winners.reshape(-1)), 1.0)
        return counts / m * allowed

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        """A draw from `probabilities`; rows with nothing allowed get the fill (index 0)."""
        probs = self.probabilities(obs, mask)
        total = probs.sum(axis=1)
        u = self.rng.random(len(probs))
        actions = np.argmax(np.cumsum(probs, axis=1) > (u * total)[:, None], axis=1)
        chosen = probs[np.arange(len(probs)), actions]
        return Action(actions.astype(np.int64), np.where(total > 0, chosen, 1.0))

    def slate_probability(self, obs: Obs, slates: np.ndarray,
                          mask: np.ndarray | None = None) -> np.ndarray:
        probs = self.probabilities(obs, mask)
        actions = as_slates(slates)[:, 0]
        inside = (actions >= 0) & (actions < probs.shape[1])
        chosen = probs[np.arange(len(probs)), np.where(inside, actions, 0)] * inside
        return np.where(probs.sum(axis=1) > 0, chosen, (actions == 0).astype(np.float64))


def check_spaces(obs_space: gym.Space, action_space: gym.Space, name: str) -> None:
    """The LiveStream dict observation and one item per step, or a `ConfigError`."""
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        raise ConfigError(f"{name} recommends one item per step; ranked slates "
                          "(slate_size > 1) are not supported")
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"{name} needs a Discrete action space, got {action_space}")
    if not (isinstance(obs_space, gym.spaces.Dict) and {"viewer", "candidates"} <=
            set(obs_space.spaces)):
        raise ConfigError(f"{name} scores candidates from a dict observation with 'viewer' "
                          f"and 'candidates' (liveq/LiveStream-v0), got {obs_space}")


class LinearBanditAgent:
    """A ridge model that learns the immediate reward of the chosen candidate, acting
    through its exploration policy (`behaviour`); the base of LinUCB and linear TS."""

    name = "linear bandit"

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: Any,
                 seed: int | np.random.SeedSequence):
        check_spaces(obs_space, action_space, self.name)
        config.validate()
        self.config = config
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        act_seq, draw_seq = seq.spawn(2)
        self.rng = np.random.default_rng(act_seq)
        self.draw_seed = int(draw_seq.generate_state(1)[0])
        self.model = RidgeModel(feature_dim(obs_space, config.interactions), config.l2)
        self.updates = 0
        self.greedy = LinearScorePolicy(self.model, 0.0, config.interactions)

    def set_progress(self, env_steps: int, total_env_steps: int) -> float:
        """No schedule: exploration comes from the model's uncertainty. Returns 0."""
        return 0.0

    def act(self, obs: Obs, mask: np.ndarray | None = None) -> Action:
        return self.behaviour.act(obs, mask)

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """Add the chosen candidates' features and rewards to the statistics.

        Returns the mean reward and the mean absolute error of the estimate before it.
        """
        actions = np.asarray(batch.actions, dtype=np.int64)
        if actions.ndim != 1:
            raise ConfigError(f"{self.name} learns from one item per step, got actions of "
                              f"shape {actions.shape}")
        x = pair_features(batch.obs, self.config.interactions)[np.arange(len(actions)), actions]
        r = np.asarray(batch.rewards, dtype=np.float64)
        error = float(np.mean(np.abs(r - self.model.mean(x))))
        self.model.add(x, r)
        self.updates += 1
        self.after_update()
        return {"reward": float(np.mean(r)), "abs_error": error}

    def after_update(self) -> None:
        """Hook for behaviour policies that depend on the update count."""

    def greedy_policy(self, frozen: bool = False) -> LinearScorePolicy:
        """Argmax of the ridge estimate: a live view, or with `frozen` a snapshot."""
        if not frozen:
            return self.greedy
        return LinearScorePolicy(self.model.copy(), 0.0, self.config.interactions)

    def state_dict(self) -> dict[str, Any]:
        """The statistics, counters and RNG state: enough to resume exactly."""
        return {"A": self.model.A.copy(), "b": self.model.b.copy(), "updates": self.updates,
                "draw_seed": self.draw_seed, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        a, b = np.asarray(state["A"], np.float64), np.asarray(state["b"], np.float64)
        if a.shape != self.model.A.shape or b.shape != self.model.b.shape:
            raise CheckpointError(f"A: saved statistics of shape {a.shape}, this env and "
                                  f"config need {self.model.A.shape}")
        self.model.A[...], self.model.b[...] = a, b  # in place: the policies view the model
        self.model.refactor()
        self.updates = int(state["updates"])
        self.draw_seed = int(state["draw_seed"])
        self.rng.bit_generator.state = state["rng"]
        self.after_update()


class LinUCBAgent(LinearBanditAgent):
    """LinUCB with one shared model: acts by the argmax of the upper confidence bound."""

    name = "linucb"

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: LinUCBConfig,
                 seed: int | np.random.SeedSequence):
        super().__init__(obs_space, action_space, config, seed)
        self.behaviour = LinearScorePolicy(self.model, config.alpha, config.interactions)


class LinearTSAgent(LinearBanditAgent):
    """Linear Thompson sampling: acts by a draw from its estimated argmax distribution."""

    name = "linear_ts"

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, config: LinearTSConfig,
                 seed: int | np.random.SeedSequence):
        super().__init__(obs_space, action_space, config, seed)
        self.behaviour = ThompsonPolicy(self.model, config.v, config.interactions,
                                        self._normals(), self.rng)

    def _normals(self) -> np.ndarray:
        """`(mc_draws, d)` standard normals of this update count (fresh after each update)."""
        gen = np.random.default_rng([self.draw_seed, self.updates])
        return gen.standard_normal((self.config.mc_draws, len(self.model.b)))

    def after_update(self) -> None:
        self.behaviour.normals = self._normals()
