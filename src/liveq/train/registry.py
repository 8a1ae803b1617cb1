"""The algorithm registry: every learner liveq can train, by name.

An entry says how to build the learner, which config dataclass holds its settings,
how it trains online (the loop kind) and whether it can learn from a logged buffer:

    name        config           loop        offline   what
    dqn         DQNConfig        off_policy  yes       double DQN
    myopic      MyopicConfig     off_policy  yes       DQN with gamma 0
    cql         CQLConfig        off_policy  yes       DQN + conservative penalty
    bandit      BanditConfig     off_policy  yes       CQL with gamma 0
    bc          BCConfig         -           yes       behaviour cloning (offline only)
    reinforce   ReinforceConfig  -           yes       top-K off-policy REINFORCE (offline)
    tabular_q   QLearningConfig  online      no        Q-table, per-step updates
    linucb      LinUCBConfig     online      no        shared linear model, UCB
    linear_ts   LinearTSConfig   online      no        shared linear model, Thompson
    ppo         PPOConfig        on_policy   no        PPO, masked softmax actor + critic
    a2c         A2CConfig        on_policy   no        A2C (PPO unclipped, one pass)
    slateq      SlateQConfig     off_policy  yes       SlateQ: slate values from item values

A run config names one (`agent: {name: cql, cql: {cql_alpha: 0.5}}`); its section is
parsed as that entry's config, with errors naming the full path (`agent.cql.lr`).
Loop kinds: "off_policy" collects into replay and samples batches
(`liveq.train.loop.ReplayLearning`); "online" updates from each vector step's
transitions as they come (`liveq.train.loop.StepLearning`); "on_policy" collects
n_steps per env into a rollout, computes GAE advantages and updates from it once
(`liveq.train.on_policy.OnPolicyLearning`). A learner follows
`Learner` below; to train by acting it is also an `OnlineLearner`, and off-policy
learners give their `replay_schedule` (`ReplaySchedule`), on-policy ones their
`rollout_schedule` (`RolloutSchedule`) and `values(obs)`; an off-policy learner may give
`replay_codec(inner) -> codec` to store more per transition (slateq: the opened rank).
Adding an algorithm is one entry in `ALGORITHMS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import gymnasium as gym
import numpy as np

from liveq.algos.bc import BCAgent, BCConfig
from liveq.algos.cql import BanditConfig, CQLAgent, CQLConfig
from liveq.algos.dqn import DQNAgent, DQNConfig, MyopicConfig
from liveq.algos.linear_bandits import LinearTSAgent, LinearTSConfig, LinUCBAgent, LinUCBConfig
from liveq.algos.ppo import A2CAgent, A2CConfig, PPOAgent, PPOConfig
from liveq.algos.reinforce import ReinforceAgent, ReinforceConfig
from liveq.algos.slateq import SlateQAgent, SlateQConfig
from liveq.algos.tabular import QLearningConfig, build_tabular_q
from liveq.buffers.replay import ReplayBatch
from liveq.core.config import ConfigError, from_dict, to_dict
from liveq.policies.base import Action, Policy

LoopKind = Literal["off_policy", "online", "on_policy"]


class Learner(Protocol):
    """What every registered learner offers the loops, offline training and serving."""

    updates: int  # update() calls so far

    def update(self, batch: ReplayBatch) -> dict[str, float]:
        """Learn from a batch; the statistics are logged as train/<key>."""
        ...

    def greedy_policy(self, frozen: bool = False) -> Policy:
        """The deterministic policy for evaluation and serving: a live view that follows
        later updates, or with `frozen` a snapshot of the learner now."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OnlineLearner(Learner, Protocol):
    """A learner that also acts while it trains (loop kinds off_policy, online, on_policy)."""

    def act(self, obs: Any, mask: np.ndarray | None = None) -> Action: ...

    def set_progress(self, env_steps: int, total_env_steps: int) -> float:
        """Advance the exploration schedule; returns epsilon (logged as train/epsilon),
        NaN for a learner without one."""
        ...


Builder = Callable[[gym.Space, gym.Space, Any, "int | np.random.SeedSequence"], Learner]


@dataclass(frozen=True)
class Algorithm:
    """One registered learner."""

    name: str
    config: type  # its config dataclass
    build: Builder  # (single-env obs space, action space, config, seed) -> learner
    loop: LoopKind | None  # how it trains online; None = only from a logged buffer
    offline: bool  # whether it can learn from a logged buffer (`liveq.train.offline`)
    doc: str  # one line


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("dqn", DQNConfig, DQNAgent, "off_policy", True,
              "double DQN (Mnih et al. 2015, van Hasselt et al. 2016)"),
    Algorithm("myopic", MyopicConfig, DQNAgent, "off_policy", True,
              "DQN with gamma 0: regresses the immediate reward"),
    Algorithm("cql", CQLConfig, CQLAgent, "off_policy", True,
              "DQN plus the conservative CQL(H) penalty, for logged data"),
    Algorithm("bandit", BanditConfig, CQLAgent, "off_policy", True,
              "CQL with gamma 0: a conservative contextual bandit"),
    Algorithm("bc", BCConfig, BCAgent, None, True,
              "behaviour cloning of the logged action (offline only)"),
    Algorithm("reinforce", ReinforceConfig, ReinforceAgent, None, True,
              "REINFORCE with the top-K off-policy correction (Chen et al. 2019), offline"),
    Algorithm("tabular_q", QLearningConfig, build_tabular_q, "online", False,
              "tabular Q-learning on Discrete states, updated every step"),
    Algorithm("linucb", LinUCBConfig, LinUCBAgent, "online", False,
              "LinUCB (Li et al. 2010): one ridge model over viewer and candidate features"),
    Algorithm("linear_ts", LinearTSConfig, LinearTSAgent, "online", False,
              "linear Thompson sampling (Agrawal and Goyal 2013), the same ridge model"),
    Algorithm("ppo", PPOConfig, PPOAgent, "on_policy", False,
              "PPO (Schulman et al. 2017): masked-softmax actor over candidates, critic, GAE"),
    Algorithm("a2c", A2CConfig, A2CAgent, "on_policy", False,
              "A2C (Mnih et al. 2016): the PPO learner unclipped, one pass per short rollout"),
    Algorithm("slateq", SlateQConfig, SlateQAgent, "off_policy", True,
              "SlateQ (Ie et al. 2019): item values and a position-biased choice model"),
)}

# DQN settings that became learners of their own: key -> (the value meaning plain DQN,
# which runs saved before the change hold and which is dropped; what to use instead)
RETIRED = {"cql_alpha": (0.0, "use agent name cql (or bandit for gamma 0)"),
           "td_weight": (1.0, "use agent name bc for behaviour cloning")}


def algorithm(name: str) -> Algorithm:
    """The entry named `name`, or a `ConfigError` listing the known names."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown agent '{name}', expected one of {list(ALGORITHMS)}")
    return ALGORITHMS[name]


def build_learner(name: str, obs_space: gym.Space, action_space: gym.Space, config: Any,
                  seed: int | np.random.SeedSequence) -> Learner:
    """The learner `name` with `config` (an instance of its config class)."""
    spec = algorithm(name)
    if not isinstance(config, spec.config):
        raise ConfigError(f"agent '{name}' takes a {spec.config.__name__}, got "
                          f"{type(config).__name__}")
    return spec.build(obs_space, action_space, config, seed)


def derive_config(name: str, source: Any, **changes: Any) -> Any:
    """Learner `name`'s config sharing `source`'s settings (network, optimiser, replay).

    Fields of `source` that `name`'s config also has carry over; the values the target
    pins (gamma 0 for myopic and bandit) and `changes` replace them; the rest take the
    target's defaults. So `derive_config("myopic", dqn_config)` is that DQN with gamma 0.
    """
    target = algorithm(name).config
    names = {f.name for f in dataclasses.fields(target)}
    values = {k: v for k, v in to_dict(source).items() if k in names}
    values.update(getattr(target, "PINNED", {}))
    values.update(changes)
    return from_dict(target, values, f"agent.{name}")


def drop_retired_keys(agent: Any) -> Any:
    """The agent section without retired DQN keys at their plain-DQN values (so run
    folders saved before they retired still load); any other value is a `ConfigError`
    saying which learner to use."""
    if not isinstance(agent, dict):
        return agent
    cleaned = dict(agent)
    for name, section in agent.items():
        if name not in ALGORITHMS or not isinstance(section, dict):
            continue
        known = {f.name for f in dataclasses.fields(ALGORITHMS[name].config)}
        retired = [k for k in RETIRED if k in section and k not in known]
        for key in retired:
            neutral, instead = RETIRED[key]
            if section[key] != neutral:
                raise ConfigError(f"agent.{name}.{key}: {name} has no {key} any more; "
                                  f"{instead}")
        cleaned[name] = {k: v for k, v in section.items() if k not in retired}
    return cleaned


def agent_config_class() -> type:
    """`AgentConfig`: `name` plus one optional section per registered algorithm."""
    fields: list[tuple[str, Any, Any]] = [("name", str, dataclasses.field(default="dqn"))]
    fields += [(a.name, a.config | None, dataclasses.field(default=None))
               for a in ALGORITHMS.values()]

    def __post_init__(self) -> None:
        # the named section takes its defaults when left out, so a run config is resolved
        if self.name in ALGORITHMS and getattr(self, self.name) is None:
            setattr(self, self.name, ALGORITHMS[self.name].config())

    def validate(self) -> None:
        if self.name not in ALGORITHMS:
            raise ConfigError(f"name: unknown agent '{self.name}', expected one of "
                              f"{list(ALGORITHMS)}")
        others = [a for a in ALGORITHMS if a != self.name and getattr(self, a) is not None]
        if others:
            raise ConfigError(f"{others[0]}: a section for agent '{others[0]}' but name is "
                              f"'{self.name}'; rename the section or the agent")

    def settings(self) -> Any:
        """The named algorithm's config."""
        return getattr(self, self.name)

    return dataclasses.make_dataclass(
        "AgentConfig", fields, kw_only=True,
        namespace={"__module__": __name__, "__post_init__": __post_init__, "validate": validate,
                   "settings": property(settings),
                   "__doc__": "Which learner (`name`), and its settings in the section "
                              "named after it; other sections stay empty."})
