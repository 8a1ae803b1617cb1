"""The reward head's two candidate networks as one module: stacked weights, one pass for both.

`RewardFutureQNetwork` runs R and F, two `CandidateQNetwork`s of one shape, one after the
other. At the demo's sizes (a batch of 128 viewers, 16 candidates, [64, 64] layers) each
layer is a few microseconds of arithmetic inside tens of microseconds of per-operation
overhead, so two networks cost about twice one. `GroupedRewardFutureQNetwork` keeps the
same two networks with each layer's weights stacked along a leading dimension of 2 (R
first) and runs every layer once for both, as a batched matrix product:

    code[g]     = relu(W_enc[g] viewer + b_enc[g])                       g in {R, F}
    hidden[g,k] = relu(W_0[g] concat(code[g], candidate_k) + b_0[g]) ...

Mathematically these are the two independent networks of `RewardFutureQNetwork` (same
initial weights from the same seeds, separate gradients); the batched products may round
differently in float32. Its `state_dict` holds the two networks under the unstacked
network's keys (`reward.head.0.weight`, ...), so checkpoints load either way, and
`unstacked()` gives the equivalent `RewardFutureQNetwork` (the serving fast path reads it).
`stack_adam_state` turns an Adam state saved for the unstacked network into this one's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from liveq.nets.decomposed import RewardFutureQNetwork
from liveq.nets.q_networks import CandidateQNetwork

PARTS = ("reward", "future")  # group index -> the unstacked network's attribute


def groupable(net: nn.Module) -> bool:
    """Whether `net` can be one group: a candidate network without a dueling value head."""
    return type(net) is CandidateQNetwork and net.value is None


class GroupedRewardFutureQNetwork(nn.Module):
    """`reward(obs) + future(obs)` of two same-shaped candidate networks, run as one."""

    def __init__(self, reward: CandidateQNetwork, future: CandidateQNetwork):
        super().__init__()
        if not (groupable(reward) and groupable(future)):
            raise TypeError("grouping needs two CandidateQNetworks without dueling heads")
        own, other = reward.state_dict(), future.state_dict()
        if {k: v.shape for k, v in own.items()} != {k: v.shape for k, v in other.items()}:
            raise TypeError("grouping needs two networks of the same shape")
        self.keys = list(own)  # the unstacked network's parameter names, in its order
        for key in self.keys:  # stacked (2, ...) copies, R first: the same initial weights
            stacked = torch.stack([own[key], other[key]]).detach().clone()
            self.register_parameter(_name(key), nn.Parameter(stacked))
        self.code_width = reward.viewer_encoder[0].out_features
        heads = [k[: -len(".weight")] for k in self.keys
                 if k.startswith("head.") and k.endswith(".weight")]
        self.later_layers = [(_name(f"{p}.weight"), _name(f"{p}.bias")) for p in heads[1:]]
        self.register_state_dict_post_hook(_unstack_state)
        self.register_load_state_dict_pre_hook(_stack_state)

    def _stacked(self, key: str) -> torch.Tensor:
        return self._parameters[_name(key)]  # what getattr finds, without its detour

    def _layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight (2, out, in), bias (2, out)) of each head layer after the first."""
        params = self._parameters
        return [(params[weight], params[bias]) for weight, bias in self.later_layers]

    def _scores(self, viewer: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Both networks' scores (2, batch, K) of candidates (batch, K, cand_dim), as
        `CandidateQNetwork.candidate_scores` computes each."""
        batch, k, cand_dim = candidates.shape
        weight = self._stacked("viewer_encoder.0.weight")  # (2, hidden0, viewer_dim)
        code = torch.baddbmm(self._stacked("viewer_encoder.0.bias").unsqueeze(1),
                             viewer.expand(2, *viewer.shape), weight.transpose(1, 2)).relu_()
        first, width = self._stacked("head.0.weight"), self.code_width
        from_viewer = torch.baddbmm(self._stacked("head.0.bias").unsqueeze(1), code,
                                    first[:, :, :width].transpose(1, 2))  # (2, batch, h)
        from_candidates = torch.matmul(candidates.reshape(batch * k, cand_dim),
                                       first[:, :, width:].transpose(1, 2))  # (2, batch*K, h)
        hidden = from_candidates.view(2, batch, k, -1).add_(from_viewer.unsqueeze(2))
        hidden = hidden.view(2, batch * k, -1)
        for weight, bias in self._layers():
            hidden = torch.baddbmm(bias.unsqueeze(1), hidden.relu_(), weight.transpose(1, 2))
        return hidden.view(2, batch, k)

    def parts(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """R's and F's Q-values, stacked: (2, batch, n_actions)."""
        return self._scores(obs["viewer"], obs["candidates"])

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        reward, future = self.parts(obs)
        return reward + future

    def reward_q(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """R's Q-values (batch, n_actions)."""
        return self.parts(obs)[0]

    def taken_parts(self, obs: dict[str, torch.Tensor],
                    actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(R(s, a), F(s, a))` of each row's action, each (batch,), from the chosen
        candidates alone."""
        chosen = obs["candidates"][torch.arange(len(actions)), actions].unsqueeze(1)
        reward, future = self._scores(obs["viewer"], chosen).squeeze(2)
        return reward, future

    def taken(self, obs: dict[str, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        """`forward(obs)[i, actions[i]]`, shape (batch,)."""
        reward, future = self.taken_parts(obs, actions)
        return reward + future

    def unstacked(self) -> RewardFutureQNetwork:
        """The same two networks as a `RewardFutureQNetwork` (a copy of the weights)."""
        nets = []
        for g in range(len(PARTS)):
            net = _empty_like(self)
            net.load_state_dict({k: self._stacked(k)[g].detach() for k in self.keys})
            nets.append(net)
        return RewardFutureQNetwork(*nets)


def _name(key: str) -> str:
    return key.replace(".", "_")


def _empty_like(grouped: GroupedRewardFutureQNetwork) -> CandidateQNetwork:
    """An untrained `CandidateQNetwork` of one group's shape."""
    encoder = grouped._stacked("viewer_encoder.0.weight")
    first = grouped._stacked("head.0.weight")
    outputs = [first.shape[1]] + [weight.shape[1] for weight, _ in grouped._layers()]
    hidden = [encoder.shape[1], *outputs[:-1]]  # the last head layer's output is the score
    return CandidateQNetwork(encoder.shape[2], first.shape[2] - encoder.shape[1], hidden)


def _unstack_state(module: GroupedRewardFutureQNetwork, state: dict[str, Any], prefix: str,
                   local_metadata: Any) -> None:
    """State-dict hook: the stacked tensors as the unstacked network's entries (views)."""
    stacked = {key: state.pop(prefix + _name(key)) for key in module.keys}
    for g, part in enumerate(PARTS):
        for key in module.keys:
            state[f"{prefix}{part}.{key}"] = stacked[key][g]


def _stack_state(module: GroupedRewardFutureQNetwork, state: dict[str, Any], prefix: str,
                 *args: Any) -> None:
    """Load pre-hook: the unstacked network's entries stacked into this module's keys;
    anything else is left for `load_state_dict` to report."""
    for key in module.keys:
        names = [f"{prefix}{part}.{key}" for part in PARTS]
        if all(name in state for name in names):
            tensors = [state.pop(name) for name in names]
            if tensors[0].shape == tensors[1].shape:
                state[prefix + _name(key)] = torch.stack(tensors)


def stack_adam_state(state: dict[str, Any], n_keys: int) -> dict[str, Any]:
    """An Adam `state_dict` saved for `RewardFutureQNetwork` (R's `n_keys` parameters, then
    F's) as the grouped network's (each parameter's moments stacked, R first); a state
    that already fits is returned as it is."""
    groups = state["param_groups"]
    if len(groups) != 1 or len(groups[0]["params"]) != 2 * n_keys:
        return state
    old = [state["state"].get(i) for i in groups[0]["params"]]
    new = {}
    for i in range(n_keys):
        reward, future = old[i], old[n_keys + i]
        if reward is None or future is None:
            continue
        new[i] = {name: (value if name == "step" else torch.stack([value, future[name]]))
                  for name, value in reward.items()}
    return {"state": new, "param_groups": [{**groups[0], "params": list(range(n_keys))}]}
