"""The Policy contract, checked on every policy liveq has.

For each policy on a fixed observation (with an explicit mask that leaves one row with
fewer allowed candidates than the slate and one with none):

* `probabilities` has the documented shape, is exactly 0 on masked candidates and sums
  to 1 over the allowed ones on every rank that an allowed candidate can fill;
* `slate_probability`, summed over every possible ordered slate, is 1, and summed over the
  slates holding candidate k at rank r it is `probabilities[:, r, k]`;
* `act`'s propensity equals `slate_probability` of the chosen action (and the
  distribution at it, for single items);
* over many draws the chosen actions follow `slate_probability` (chi-square test, fixed
  seeds, alpha 0.001, cells with small expected counts merged).

To cover a new policy, add a `Case` to `CASES`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from liveq.algos.dqn import DQNAgent, DQNConfig
from liveq.algos.reinforce import ReinforceAgent, ReinforceConfig
from liveq.algos.tabular import QLearningConfig, TabularQAgent
from liveq.policies.base import Action, as_slates
from liveq.policies.baselines import make_baseline
from liveq.policies.explore import EpsilonGreedy, Softmax
from liveq.sim.chain import chain_optimal_q
from liveq.sim.vector import make_vec_env
from liveq.train.registry import ALGORITHMS, build_learner

SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}
N_ENVS = 4
DRAWS = 1500
ALPHA = 0.001
MIN_EXPECTED = 5.0


class World(NamedTuple):
    """A fixed observation, its explicit mask and what a policy may need to be built."""

    obs: Any
    mask: np.ndarray  # (N_ENVS, K) bool
    env: Any  # the LiveStream vector env (None for the chain)
    slate_size: int


class Case(NamedTuple):
    name: str
    world: str  # "livestream" or "chain"
    build: Callable[[World], Any]  # World -> Policy
    slates: bool  # can recommend slates (slate_size > 1)
    sizes: tuple[int, ...] = ()  # slate sizes to check; () = (1, 3) with slates, else (1,)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def dqn_greedy(world: World):
    env = world.env
    agent = DQNAgent(env.single_observation_space, env.single_action_space,
                     DQNConfig(hidden_sizes=[16, 16]), seed=0)
    return agent.greedy_policy()


def dqn_behaviour(world: World):
    env = world.env
    agent = DQNAgent(env.single_observation_space, env.single_action_space,
                     DQNConfig(hidden_sizes=[16, 16]), seed=1)
    agent.epsilon = 0.4
    return agent.behaviour


def tabular_agent(world: World) -> TabularQAgent:
    agent = TabularQAgent(5, 2, QLearningConfig(), seed=2)
    agent.q[:] = chain_optimal_q(5, 0.9)
    agent.q[1] = 0.5  # a tie: the lowest index is greedy
    agent.epsilon = 0.3
    return agent


def reinforce_sampling(world: World):
    """pi of top-K REINFORCE, drawn without replacement (slates on a slate world)."""
    env = world.env
    agent = ReinforceAgent(env.single_observation_space, env.single_action_space,
                           ReinforceConfig(hidden_sizes=[16, 16]), seed=9)
    return agent.sampling_policy(rng=rng(10))


def baseline(name: str) -> Callable[[World], Any]:
    return lambda world: make_baseline(name, world.env, seed=3)


BASES = {"popular": (baseline("popular"), True), "repeat": (baseline("repeat"), True),
         "oracle": (baseline("oracle"), True), "dqn-greedy": (dqn_greedy, False)}
TEMPERATURES = {"popular": 0.5, "repeat": 40.0, "oracle": 0.05, "dqn-greedy": 0.1}

CASES = [
    Case("random", "livestream", baseline("random"), True),
    *(Case(name, "livestream", build, slates) for name, (build, slates) in BASES.items()),
    *(Case(f"epsilon-greedy({name})", "livestream",
           lambda w, b=build: EpsilonGreedy(b(w), 0.3, rng(4)), slates)
      for name, (build, slates) in BASES.items()),
    *(Case(f"softmax({name})", "livestream",
           lambda w, b=build, t=TEMPERATURES[name]: Softmax(b(w), t, rng(5)), slates)
      for name, (build, slates) in BASES.items()),
    Case("dqn-behaviour", "livestream", dqn_behaviour, False),
    Case("reinforce-sampling", "livestream", reinforce_sampling, True),
    Case("tabular-greedy", "chain", lambda w: tabular_agent(w).greedy_policy(), False),
    Case("tabular-behaviour", "chain", lambda w: tabular_agent(w).behaviour, False),
    Case("softmax(tabular-greedy)", "chain",
         lambda w: Softmax(tabular_agent(w).greedy_policy(), 0.5, rng(6)), False),
]


def registered(name: str, behaviour: bool) -> Callable[[World], Any]:
    """A learner from the algorithm registry, with default settings and small networks:
    its greedy policy, or its exploring behaviour policy."""

    def build(world: World):
        if world.env is None:  # the chain: Discrete states and actions
            spaces = (gym.spaces.Discrete(5), gym.spaces.Discrete(2))
        else:
            spaces = (world.env.single_observation_space, world.env.single_action_space)
        config = ALGORITHMS[name].config()
        if hasattr(config, "hidden_sizes"):
            config = dataclasses.replace(config, hidden_sizes=[16, 16])
        learner = build_learner(name, *spaces, config, seed=7)
        if not behaviour:
            return learner.greedy_policy()
        learner.epsilon = 0.3
        return learner.behaviour

    return build


def world_of(name: str) -> str:
    return "chain" if name == "tabular_q" else "livestream"


# Learners that rank slates too (dqn: top-k by item Q), and those that rank only slates.
SLATE_SIZES = {"dqn": (1, 3), "slateq": (3,)}
CASES += [Case(f"registry:{name}-greedy", world_of(name), registered(name, False), False,
               SLATE_SIZES.get(name, ())) for name in ALGORITHMS]
CASES += [Case(f"registry:{name}-behaviour", world_of(name), registered(name, True), False,
               SLATE_SIZES.get(name, ()))
          for name, spec in ALGORITHMS.items() if spec.loop is not None]
PARAMS = [pytest.param(case, size, id=f"{case.name}-slate{size}")
          for case in CASES for size in (case.sizes or ((1, 3) if case.slates else (1,)))]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Thousands of tiny forward passes: threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def worlds():
    made: dict[tuple[str, int], World] = {}

    def get(kind: str, slate_size: int) -> World:
        if (kind, slate_size) not in made:
            made[kind, slate_size] = make_world(kind, slate_size)
        return made[kind, slate_size]

    yield get
    for world in made.values():
        if world.env is not None:
            world.env.close()


def make_world(kind: str, slate_size: int) -> World:
    if kind == "chain":
        mask = np.array([[1, 1], [1, 1], [0, 1], [0, 0]], dtype=bool)
        return World(np.array([0, 1, 2, 4]), mask, None, 1)
    env = make_vec_env("liveq/LiveStream-v0", N_ENVS,
                       kwargs={**SMALL_WORLD, "slate_size": slate_size})
    obs, _ = env.reset(seed=11)
    mask = obs["mask"].astype(bool).copy()
    mask[1, [0, 3, 6]] = False  # fewer allowed
    mask[2] = False
    mask[2, [1, 5]] = True  # fewer allowed than a slate of 3
    mask[3] = False  # none allowed
    return World(obs, mask, env, slate_size)


# ---------------------------------------------------------------- the check
def all_slates(n_candidates: int, slate_size: int) -> np.ndarray:
    """`(P, slate_size)` every ordered slate of distinct candidates."""
    return np.array(list(itertools.permutations(range(n_candidates), slate_size)))


def slate_table(policy, obs, mask, slates: np.ndarray) -> np.ndarray:
    """`(P, n_envs)` probability of each slate in each row, from `slate_probability`."""
    n_envs = len(mask)
    table = []
    for slate in slates:
        given = np.tile(slate, (n_envs, 1))
        table.append(policy.slate_probability(obs, given[:, 0] if len(slate) == 1 else given,
                                              mask))
    return np.array(table)


def check_distribution(policy, obs, mask) -> tuple[np.ndarray, np.ndarray]:
    """Shape, zeros, sums and agreement of `probabilities` with `slate_probability`;
    returns every slate and its probability table `(P, n_envs)`."""
    size, (n_envs, k) = policy.slate_size, mask.shape
    probs = policy.probabilities(obs, mask)
    per_rank = probs[:, None, :] if size == 1 else probs
    assert per_rank.shape == (n_envs, size, k), probs.shape
    assert np.all(per_rank[~np.broadcast_to(mask[:, None, :], per_rank.shape)] == 0.0)
    fillable = np.arange(size)[None, :] < mask.sum(axis=1)[:, None]
    np.testing.assert_allclose(per_rank.sum(axis=2), fillable.astype(float), atol=1e-9)
    slates = all_slates(k, size)
    table = slate_table(policy, obs, mask, slates)
    assert np.all(table >= 0)
    np.testing.assert_allclose(table.sum(axis=0), 1.0, atol=1e-9)
    for rank in range(size):
        holds = slates[:, rank][:, None] == np.arange(k)[None, :]  # (P, K)
        np.testing.assert_allclose(holds.T.astype(float) @ table * mask.T, per_rank[:, rank].T,
                                   atol=1e-9)
    return slates, table


def check_draws(policy, obs, mask, slates: np.ndarray, table: np.ndarray) -> None:
    """Propensities equal `slate_probability`; frequencies pass a chi-square test."""
    k = mask.shape[1]
    codes = slates @ (k ** np.arange(slates.shape[1])[::-1])  # (P,)
    drawn = []
    for _ in range(DRAWS):
        chosen: Action = policy.act(obs, mask)
        actions = as_slates(chosen.actions)
        np.testing.assert_allclose(chosen.propensities,
                                   policy.slate_probability(obs, chosen.actions, mask),
                                   rtol=1e-9, atol=0)
        drawn.append(actions @ (k ** np.arange(actions.shape[1])[::-1]))
    drawn = np.array(drawn)  # (DRAWS, n_envs)
    for row in range(len(mask)):
        counts = (drawn[:, row][:, None] == codes[None, :]).sum(axis=0)
        assert counts.sum() == DRAWS, "a drawn slate is not a slate of distinct candidates"
        chi_square_agrees(counts, table[:, row])


def chi_square_agrees(counts: np.ndarray, probs: np.ndarray) -> None:
    assert not np.any(counts[probs == 0]), "drew an action of probability 0"
    expected = probs * counts.sum()
    order = np.argsort(expected)
    small = expected[order] < MIN_EXPECTED
    obs_cells = [*counts[order][~small], counts[order][small].sum()]
    exp_cells = [*expected[order][~small], expected[order][small].sum()]
    if exp_cells[-1] < MIN_EXPECTED and len(exp_cells) > 1:  # fold the rest into the next
        obs_cells[0] += obs_cells.pop()
        exp_cells[0] += exp_cells.pop()
    if len(exp_cells) < 2:
        return
    exp_cells = np.array(exp_cells) * (sum(obs_cells) / sum(exp_cells))
    p_value = chisquare(obs_cells, exp_cells).pvalue
    assert p_value > ALPHA, f"draws do not follow the distribution (p = {p_value:.2g})"


def check_policy(policy, obs, mask) -> None:
    slates, table = check_distribution(policy, obs, mask)
    check_draws(policy, obs, mask, slates, table)
    if policy.slate_size == 1:
        chosen = policy.act(obs, mask)
        rows = np.flatnonzero(mask.any(axis=1))
        probs = policy.probabilities(obs, mask)
        np.testing.assert_allclose(chosen.propensities[rows],
                                   probs[rows, chosen.actions[rows]], rtol=1e-9)


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize(("case", "slate_size"), PARAMS)
def test_policy_contract(case: Case, slate_size: int, worlds):
    world = worlds(case.world, slate_size)
    policy = case.build(world)
    assert policy.slate_size == slate_size
    check_policy(policy, world.obs, world.mask)


class UniformPropensity:
    """A broken wrapper: acts like its base but reports 1 / n_allowed as the propensity."""

    def __init__(self, base):
        self.base, self.slate_size = base, base.slate_size

    def allowed(self, obs, mask=None):
        return self.base.allowed(obs, mask)

    def act(self, obs, mask=None) -> Action:
        chosen = self.base.act(obs, mask)
        n = np.maximum(self.allowed(obs, mask).sum(axis=1), 1)
        return Action(chosen.actions, 1.0 / n)

    def probabilities(self, obs, mask=None):
        return self.base.probabilities(obs, mask)

    def slate_probability(self, obs, slates, mask=None):
        return self.base.slate_probability(obs, slates, mask)


class ClaimsUniform(UniformPropensity):
    """Another: acts greedily but claims a uniform distribution, consistently."""

    def act(self, obs, mask=None) -> Action:
        chosen = self.base.act(obs, mask)
        return Action(chosen.actions, self.slate_probability(obs, chosen.actions, mask))

    def probabilities(self, obs, mask=None):
        allowed = self.allowed(obs, mask)
        return allowed / np.maximum(allowed.sum(axis=1, keepdims=True), 1)

    def slate_probability(self, obs, slates, mask=None):
        allowed = self.allowed(obs, mask)
        inside = allowed[np.arange(len(allowed)), slates]
        return np.where(inside, 1.0 / np.maximum(allowed.sum(axis=1), 1), 0.0)


@pytest.mark.parametrize("broken", [UniformPropensity, ClaimsUniform])
def test_the_check_catches_a_wrong_policy(broken, worlds):
    world = worlds("livestream", 1)
    policy = broken(EpsilonGreedy(make_baseline("popular", world.env), 0.3, rng(8)))
    with pytest.raises(AssertionError):
        check_policy(policy, world.obs, world.mask)


def test_every_registered_algorithm_is_covered():
    covered = {case.name for case in CASES}
    for name, spec in ALGORITHMS.items():
        assert f"registry:{name}-greedy" in covered
        assert spec.loop is None or f"registry:{name}-behaviour" in covered
