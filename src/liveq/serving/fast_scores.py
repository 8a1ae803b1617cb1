"""The served Q-network's forward pass in numpy, for one request's candidate table.

A request scores one viewer's 16 candidates. Through torch that cost about 0.4 ms of
CPU, nearly all of it per-call overhead (tensor wrapping, module dispatch, autograd
bookkeeping) around a few microseconds of arithmetic; the same layers as numpy matrix
products cost a tenth of that. `fast_scores(greedy)` returns such a scorer for the
networks it knows (`CandidateQNetwork`, plain or dueling, and `RewardFutureQNetwork` of
two such, under a `GreedyQPolicy`) and
the policy's own `scores` for any other, so every registered learner still serves.

Same function, not the same bits: numpy's float32 products may sum in another order than
torch's, so scores agree to float32 rounding, about 1e-7 of their size
(tests/test_serving_fast_scores.py checks 1e-6 of their scale and the same ranking on
random observations). The logged scores are the numpy ones, and the probabilities logged
with them are computed from exactly these scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import nn

from liveq.algos.dqn import GreedyQPolicy
from liveq.nets.decomposed import RewardFutureQNetwork
from liveq.nets.grouped import GroupedRewardFutureQNetwork
from liveq.nets.q_networks import CandidateQNetwork
from liveq.policies.base import Obs, action_mask

Scorer = Callable[[Obs], np.ndarray]
"""Observation (batch of one or more) -> scores (batch, K), -inf where not allowed."""


def _layers(module: nn.Module) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """A Sequential of Linear and ReLU as `[(weight.T, bias) | None for ReLU]`, or a
    `TypeError` naming a layer numpy cannot stand in for."""
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for layer in module:
        if isinstance(layer, nn.ReLU):
            out.append(None)
        elif type(layer) is nn.Linear:
            out.append((_array(layer.weight).T.copy(), _array(layer.bias)))
        else:
            raise TypeError(f"no numpy forward for {type(layer).__name__}")
    return out


def _array(tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.float32, copy=True)


def _run(layers: list, x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = np.maximum(x, np.float32(0)) if layer is None else x @ layer[0] + layer[1]
    return x


class NumpyCandidateQ:
    """`CandidateQNetwork.forward` as numpy: the viewer code once per row, the head's
    first layer split into its viewer and candidate parts as the network splits it."""

    def __init__(self, net: CandidateQNetwork):
        self.encoder = _layers(net.viewer_encoder)
        first, *rest = list(net.head)
        if type(first) is not nn.Linear:
            raise TypeError(f"no numpy forward for {type(first).__name__}")
        self.width = self.encoder[0][0].shape[1]  # the viewer code's width
        weight = _array(first.weight)
        self.first_viewer = weight[:, :self.width].T.copy()  # (hidden0, h1)
        self.first_candidate = weight[:, self.width:].T.copy()  # (cand_dim, h1)
        self.first_bias = _array(first.bias)
        self.head = _layers(nn.Sequential(*rest))
        self.value = None if net.value is None else _layers(net.value)

    def __call__(self, obs: Obs) -> np.ndarray:
        """Q-values (batch, K) of `obs` (batched numpy, as `obs_to_tensor` reads it)."""
        viewer = np.asarray(obs["viewer"], np.float32)  # (batch, viewer_dim)
        candidates = np.asarray(obs["candidates"], np.float32)  # (batch, K, cand_dim)
        code = _run(self.encoder, viewer)  # (batch, hidden0)
        from_viewer = code @ self.first_viewer + self.first_bias  # (batch, h1)
        hidden = candidates @ self.first_candidate + from_viewer[:, None, :]
        scores = _run(self.head, hidden)[..., 0]  # (batch, K)
        if self.value is None:
            return scores
        value = _run(self.value, code)[:, 0]  # (batch,)
        if "mask" in obs:
            allowed = np.asarray(obs["mask"], bool).astype(np.float32)
            mean = (scores * allowed).sum(axis=1) / np.maximum(allowed.sum(axis=1), 1.0)
        else:
            mean = scores.mean(axis=1)
        return value[:, None] + scores - mean[:, None]


class NumpyRewardFutureQ:
    """`RewardFutureQNetwork.forward` as numpy: the sum of its two candidate networks."""

    def __init__(self, net: RewardFutureQNetwork):
        if type(net.reward) is not CandidateQNetwork or type(net.future) is not CandidateQNetwork:
            raise TypeError("no numpy forward for these parts")
        self.reward, self.future = NumpyCandidateQ(net.reward), NumpyCandidateQ(net.future)

    def __call__(self, obs: Obs) -> np.ndarray:
        return self.reward(obs) + self.future(obs)


NUMPY_FORWARD = {CandidateQNetwork: NumpyCandidateQ, RewardFutureQNetwork: NumpyRewardFutureQ,
                 GroupedRewardFutureQNetwork: lambda net: NumpyRewardFutureQ(net.unstacked())}
"""Network class -> its numpy forward (the demo config's DQN serves the grouped R + F)."""


def fast_scores(greedy) -> Scorer:
    """A scorer equal to `greedy.scores` (to float32 rounding), in numpy when it can be."""
    net = getattr(greedy, "q_net", None)
    if type(greedy) is GreedyQPolicy and type(net) in NUMPY_FORWARD:
        try:
            forward = NUMPY_FORWARD[type(net)](net)
        except TypeError:
            return greedy.scores
        n_actions = greedy.n_actions

        def scores(obs: Obs) -> np.ndarray:
            return np.where(action_mask(obs, None, n_actions), forward(obs), -np.inf)

        return scores
    return greedy.scores
