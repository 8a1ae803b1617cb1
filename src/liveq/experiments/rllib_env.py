"""liveq's envs on RLlib: registered through their batched vector entry point, and a PPO
RLModule that honours the candidate mask.

RLlib's `SingleAgentEnvRunner` builds its envs with `gymnasium.make_vec(...,
num_envs=num_envs_per_env_runner, vectorization_mode=gym_env_vectorize_mode)`. For an env
registered with `ray.tune.register_env` it gives the creator `env_config | {"num_envs":
n}` as the vector entry point, so with `gym_env_vectorize_mode="vector_entry_point"` each
env runner asks the creator here for the whole batch at once, and the creator returns
`liveq.sim.vector.make_vec_env`'s one `VectorEnv` over the numpy core: no per-session env
objects, no per-session wrappers. Both use Gymnasium's `NEXT_STEP` autoreset, which is
what the env runner expects. Each env runner simulates its own platform (one world per
runner, seeded from `config.debugging(seed=...)` and the runner's index).

`MaskedPPOModule` is the RLlib side of liveq's own `ppo` learner: the same
item-conditioned actor (`liveq.nets.q_networks`, one shared head scoring each candidate
for the viewer) and critic (`liveq.nets.value_networks`), reading liveq's dict
observation as it comes (no flattening), with the logits of masked candidates set to
RLlib's `FLOAT_MIN` (as RLlib's own action-masking example does), so they are never
sampled and their probability is 0 in PPO's loss. It follows RLlib's PPO contract
(`ValueFunctionAPI`); other RLlib algorithms do not go through it, see the README.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN
from ray.tune.registry import register_env

from liveq.algos.dqn import GreedyQPolicy
from liveq.algos.ppo import single_item_actions
from liveq.core.errors import ConfigError
from liveq.nets.q_networks import make_q_network
from liveq.nets.value_networks import make_value_network
from liveq.sim.vector import make_vec_env

VECTOR_MODE = "vector_entry_point"  # the gym_env_vectorize_mode the creators need


def vector_env_ids() -> list[str]:
    """liveq's Gymnasium ids that have a batched vector entry point."""
    return sorted(env_id for env_id, spec in gym.registry.items()
                  if env_id.startswith("liveq/") and spec.vector_entry_point is not None)


def create_vector_env(env_id: str, env_config: dict[str, Any]) -> gym.vector.VectorEnv:
    """RLlib's env creator: `env_config` holds the env's keyword arguments and the
    `num_envs` RLlib adds when it calls the vector entry point."""
    kwargs = dict(env_config)
    n_envs = kwargs.pop("num_envs", None)
    if n_envs is None:
        raise ConfigError(f"{env_id} is registered with RLlib as a batched vector env only: "
                          f"set config.env_runners(gym_env_vectorize_mode='{VECTOR_MODE}')")
    return make_vec_env(env_id, int(n_envs), kwargs)


def register_rllib_envs() -> list[str]:
    """Register every liveq env with a vector entry point under its Gymnasium id with
    RLlib (`config.environment("liveq/LiveStream-v0", env_config=kwargs)`); returns the
    ids. Call it in the driver after `ray.init`: Ray's registry reaches the env runners."""
    ids = vector_env_ids()
    for env_id in ids:
        creator: Callable[[dict], gym.vector.VectorEnv] = partial(create_vector_env, env_id)
        register_env(env_id, creator)
    return ids


def liveq_obs(obs: Any) -> Any:
    """RLlib's tensor batch of a liveq observation as liveq's networks read it: float
    features, the candidate mask as bool."""
    if isinstance(obs, dict):
        out = {key: value.float() for key, value in obs.items() if key != "mask"}
        if "mask" in obs:
            out["mask"] = obs["mask"].bool()
        return out
    return obs.float()


def mask_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`logits` (batch, K) with masked candidates at `FLOAT_MIN`: probability 0, and a row
    with no valid candidate (a session restarting, whose action the env ignores) stays
    finite (uniform) instead of NaN."""
    if mask is None:
        return logits
    return torch.where(mask, logits, torch.full_like(logits, FLOAT_MIN))


class MaskedPPOModule(TorchRLModule, ValueFunctionAPI):
    """liveq's actor and critic as an RLlib PPO module; `model_config["hidden_sizes"]`
    sets both (for the dict observation the first width is the viewer encoder's)."""

    def setup(self) -> None:
        hidden = list(self.model_config.get("hidden_sizes", [64, 64]))
        self.n_actions = single_item_actions(self.action_space, "RLlib PPO")
        self.actor = make_q_network(self.observation_space, self.n_actions, hidden)
        self.critic = make_value_network(self.observation_space, hidden)

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        obs = liveq_obs(batch[Columns.OBS])
        mask = obs.get("mask") if isinstance(obs, dict) else None
        return {Columns.ACTION_DIST_INPUTS: mask_logits(self.actor(obs), mask)}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        """V(s) `(batch,)` for GAE and the value loss."""
        return self.critic(liveq_obs(batch[Columns.OBS]))

    def greedy_policy(self) -> GreedyQPolicy:
        """The argmax over valid candidates of the actor's logits, as a liveq `Policy`
        (what liveq's evaluator and `liveq compare` use for every learner)."""
        return GreedyQPolicy(self.actor, self.n_actions).freeze()

