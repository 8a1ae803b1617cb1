"""Gymnasium envs over the batched core: `liveq/LiveStream-v0` and its vector form.

`LiveStreamEnv` is one session at a time (a batch of one); `LiveStreamVectorEnv` steps
`num_envs` concurrent sessions on one platform with the numpy core. Their docstrings give
the spaces, rewards and episode end; the features are listed in `liveq.features.schema`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from liveq.core.config import from_dict, to_dict
from liveq.core.errors import InvalidActionError
from liveq.features.schema import candidate_width, viewer_width
from liveq.sim.config import LiveStreamConfig
from liveq.sim.core import LiveStreamCore

SEED_BOUND = 2**63  # world seeds are drawn from the env's np_random below this


def make_config(config: LiveStreamConfig | dict | None, overrides: dict,
                path: str = "") -> LiveStreamConfig:
    """A validated config from an object or mapping plus keyword overrides; errors name
    keys under `path` (such as `env.kwargs`)."""
    base = to_dict(config) if isinstance(config, LiveStreamConfig) else dict(config or {})
    return from_dict(LiveStreamConfig, {**base, **overrides}, path)


def check_kwargs(kwargs: dict[str, Any], path: str) -> None:
    """Validate an env's keyword arguments before building it (a run config's env.kwargs)."""
    overrides = {k: v for k, v in kwargs.items() if k != "config"}
    make_config(kwargs.get("config"), overrides, path)


# Every feature is a share, a unit-vector product or a scaled logarithm; recent-topic
# exposure is at most 1 / (1 - fatigue_decay). This bound is loose but true.
FEATURE_BOUND = 100.0


class SlateSpace(spaces.MultiDiscrete):
    """`MultiDiscrete([n_candidates] * slate_size)` whose members rank distinct candidates.

    A slate shows each candidate once, so `sample()` draws without replacement and
    `contains()` refuses repeats; a mask or probabilities fall back to MultiDiscrete's
    sampling, which may repeat.
    """

    def __init__(self, n_candidates: int, slate_size: int):
        super().__init__([n_candidates] * slate_size)

    def sample(self, mask=None, probability=None) -> np.ndarray:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        picks = self.np_random.choice(int(self.nvec[0]), size=len(self.nvec), replace=False)
        return (self.start + picks).astype(self.dtype)

    def contains(self, x: Any) -> bool:
        return super().contains(x) and len(np.unique(np.asarray(x))) == len(self.nvec)


def spaces_for(cfg: LiveStreamConfig) -> tuple[spaces.Dict, spaces.Space]:
    k, bound = cfg.n_candidates, max(FEATURE_BOUND, 2.0 / (1.0 - cfg.fatigue_decay + 1e-6))
    obs = spaces.Dict({
        "viewer": spaces.Box(-bound, bound, (viewer_width(cfg.topic_dim),), np.float32),
        "candidates": spaces.Box(-bound, bound, (k, candidate_width(cfg.content.n_columns())),
                                 np.float32),
        "mask": spaces.MultiBinary(k),
    })
    act = spaces.Discrete(k) if cfg.slate_size == 1 else SlateSpace(k, cfg.slate_size)
    return obs, act


class LiveStreamEnv(gym.Env):
    """
    ## Description

    A live-streaming platform, one viewer session at a time. Each step the agent
    recommends one live stream (or a ranked list of `slate_size`) to the viewer from a
    table of live candidates; the viewer opens one or none and watches. Other sessions'
    traffic is simulated as outside audience, so streams' viewer counts and logged
    statistics move on.

    ## Action Space

    `Discrete(n_candidates)` (`slate_size == 1`) or `SlateSpace`, a
    `MultiDiscrete([n_candidates] * slate_size)` of distinct candidates, ranks in order.
    Actions must be integers (numpy or Python ints; floats, bools, strings and NaN are
    refused), and a slate must not repeat a candidate. A masked, out-of-range or repeated candidate
    raises `InvalidActionError` unless `invalid_action="empty"`, which leaves that rank
    empty.

    ## Observation Space

    `Dict` (see `liveq.features.schema` for every column's meaning and scale):
    * `viewer` `Box(float32, (2 * topic_dim + 10,))`: the logged interest profile, recent
      topic exposure, then time of day (sin, cos), session step, log session minutes,
      clicked last step, watch share last step, follows, new viewer, log days active,
      watching a live stream.
    * `candidates` `Box(float32, (n_candidates, 11))`: per candidate, topic match with the
      profile, overlap with recent topics, followed, watching now, log minutes watched
      before, log viewers, estimated CTR, estimated watch share, log impressions
      (confidence), hours live, new streamer; with `content.mode: text`, `content.dim`
      more: the streamer's title and tags embedded (`liveq.features.content`).
    * `mask` `MultiBinary(n_candidates)`: 1 where a live streamer fills the slot.

    ## Rewards

    `rewards.watch_minute * minutes + rewards.click * opened + rewards.gift * gifts
    + rewards.comment * comments + rewards.return_visit * (session ended and viewer
    returns)`.

    ## Starting State

    `reset(seed=s)` builds a new platform from `s` (streamers, a day of logged outside
    traffic, the first viewer: a returning one with a past with chance
    `returning_share`). `reset()` without a seed starts the next session on the same
    platform: the same viewer if they came back, otherwise a new one.

    ## Episode End

    Terminated when the viewer's patience runs out; truncated after `max_session_steps`
    steps (no return reward then). Stepping after the end without `reset()` raises
    `InvalidActionError`.

    ## Arguments

    `gymnasium.make("liveq/LiveStream-v0", **fields)` with any `LiveStreamConfig` field,
    or `config=LiveStreamConfig(...)` / a mapping. `info` holds the step's events
    (`shown_ids`, `clicked_id`, `watch_share`, `watch_minutes`, `gifts`, `follow_id`, ...).
    """

    metadata = {"render_modes": []}

    check_kwargs = staticmethod(check_kwargs)

    def __init__(self, config: LiveStreamConfig | dict | None = None, **overrides: Any):
        self.config = make_config(config, overrides)
        self.observation_space, self.action_space = spaces_for(self.config)
        self.core = LiveStreamCore(self.config, 1)
        self._built = self._ended = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._built:
            obs = self.core.reset(int(self.np_random.integers(SEED_BOUND)))
            self._built = True
        else:
            self.core.needs_reset[:] = True
            obs = self.core.step(self._empty_action())[0]
        self._ended = False
        return _first(obs), {}

    def step(self, action):
        if not self._built:
            raise InvalidActionError("call reset() before step()")
        if self._ended:
            raise InvalidActionError("the session has ended (terminated or truncated): call "
                                     "reset() before step()")
        obs, reward, terminated, truncated, info = self.core.step(self._batched(action))
        self._ended = bool(terminated[0] or truncated[0])
        return (_first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]),
                _first(info))

    def _batched(self, action: Any) -> np.ndarray:
        """`action` as a batch of one, refusing anything but integers of the right shape."""
        arr = np.asarray(action)
        shape = self.action_space.shape
        if not np.issubdtype(arr.dtype, np.integer) or arr.shape != shape:
            want = "an integer" if shape == () else f"integers of shape {shape}"
            raise InvalidActionError(f"action must be {want} (candidate indices), got "
                                     f"{action!r}")
        return arr[None]

    def _empty_action(self) -> np.ndarray:
        return np.zeros((1,) if self.config.slate_size == 1 else (1, self.config.slate_size),
                        dtype=np.int64)

    def close(self) -> None:
        self.core.close()
        super().close()


def _first(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    return {key: value[0] for key, value in batch.items()}


class LiveStreamVectorEnv(gym.vector.VectorEnv):
    """
    ## Description

    `num_envs` concurrent viewer sessions on one simulated live-streaming platform,
    stepped together by the numpy core. The sessions share the clock and the streamer
    catalogue, so a stream's viewer count moves with who joins it.

    ## Action Space

    `batch_space` of the single env's: `(num_envs,)` or `(num_envs, slate_size)`
    integers (numpy int arrays are taken as they are). Masked, out-of-range or repeated
    candidates raise `InvalidActionError` unless `invalid_action="empty"`.

    ## Observation Space

    The single env's `Dict` (see `LiveStreamEnv`), batched along a first axis of
    `num_envs`.

    ## Rewards

    As `LiveStreamEnv`, per session, `(num_envs,)` float64.

    ## Starting State

    `reset(seed=s)` seeds the env's `np_random` and builds the platform from a world seed
    drawn from it; `reset()` without a seed draws the next world seed from the same
    generator, so a seeded reset followed by unseeded ones is reproducible. The first
    world is built by the first `reset`, not by the constructor.

    ## Episode End

    Per session, as `LiveStreamEnv`. Autoreset is Gymnasium's `NEXT_STEP`: a session
    that ended restarts on the next `step`, which ignores its action and pays 0.

    ## Arguments

    `gymnasium.make_vec("liveq/LiveStream-v0", num_envs=n,
    vectorization_mode="vector_entry_point", **fields)`. `get_state()`/`set_state()`
    continue a run bit for bit; `make_replay_codec(capacity)` stores ids instead of
    feature copies in replay; `close()` releases the core's thread pool.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    check_kwargs = staticmethod(check_kwargs)

    def __init__(self, num_envs: int = 1, config: LiveStreamConfig | dict | None = None,
                 **overrides: Any):
        self.config = make_config(config, overrides)
        self.core = LiveStreamCore(self.config, num_envs)  # refuses sizes that cannot fit
        self.num_envs = n_envs = num_envs
        self.single_observation_space, self.single_action_space = spaces_for(self.config)
        self.observation_space = batch_space(self.single_observation_space, n_envs)
        self.action_space = batch_space(self.single_action_space, n_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.core.reset(int(self.np_random.integers(SEED_BOUND))), {}

    def step(self, actions):
        return self.core.step(np.asarray(actions))

    def close_extras(self, **kwargs: Any) -> None:
        # Gymnasium < 1.3 also closes from __del__, even when __init__ refused the config
        # before the core existed.
        if hasattr(self, "core"):
            self.core.close()

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (see `set_state`)."""
        return self.core.get_state()

    def set_state(self, state: dict[str, Any]) -> dict[str, np.ndarray]:
        """Restore a `get_state` snapshot; returns the observation at that point."""
        self.core.set_state(state)
        return self.core.observe()

    def make_replay_codec(self, capacity: int):
        from liveq.sim.codec import LiveStreamCodec
        return LiveStreamCodec(self.core, capacity)
