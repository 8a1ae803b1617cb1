"""`liveq learn`: train a candidate model from the service's own log.

The reward join (`liveq.serving.join`) turns the log into transitions (the logged feature
dict, the shown candidate's position, the reward, the same viewer's next decision in the
session, terminated at the session's end); they fill a replay buffer (`DictCodec` of the
served observation space) and `liveq.train.offline.train_offline` updates the learner,
the same code path as learning from simulator logs (`liveq ope offline-rl`). Any learner
registered with `offline=True` can learn; from a log of slates (k > 1), only those that
replay which item was opened (`slate_learners()`: slateq). The run folder is a normal one that
`liveq serve --model` and `liveq models register` load:

    config.yaml              the run config (env kwargs of the served model, the learner)
    meta.json                seed, package versions, start time, where the log came from
    checkpoints/best.pt      the learner after training (latest.pt is the same weights)
    join.yaml                the JoinConfig used (the join can be replayed from it)
    learn.json               the join's counts and the training statistics
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from liveq.buffers.clicks import ClickCodec
from liveq.buffers.replay import DictCodec, ReplayBuffer
from liveq.core.config import ConfigError, load_yaml, save_yaml, to_dict
from liveq.core.errors import LogError, UsageError
from liveq.core.report import check_output_dir, save_json
from liveq.features.schema import viewer_width
from liveq.serving import store
from liveq.serving.join import JoinConfig, JoinedLog, join_log, save_join_config
from liveq.serving.model import observation_space
from liveq.serving.settings import FeatureSettings
from liveq.train.checkpoint import save_checkpoint
from liveq.train.config import RunConfig, load_run_config, run_config_dict
from liveq.train.offline import train_offline
from liveq.train.registry import ALGORITHMS, algorithm, build_learner, derive_config


@dataclass(kw_only=True)
class LearnRequest:
    """What `liveq learn` was asked for."""

    out: str
    """Run folder to create (must not exist)."""
    learner: str = "cql"
    """A registered learner with offline=True."""
    config: str | None = None
    """Run config (path or shipped name) whose env and agent settings to use; default:
    the live model's run config."""
    gradient_steps: int = 2000
    """Gradient steps of train_offline."""
    seed: int | None = None
    """Seed of the learner and the sampling (default: the run config's)."""
    min_decisions: int = 100
    """Fewer joined decisions than this is refused."""


def learn(engine, request: LearnRequest, join: JoinConfig) -> dict[str, Any]:
    """Join the log, train the learner offline and write the run folder; returns the
    summary saved as learn.json."""
    out = Path(request.out)
    _check_request(request, out)
    started = time.perf_counter()
    joined = join_log(engine, join)
    if joined.stats["steps"] < request.min_decisions:
        raise LogError(f"the log gives {joined.stats['steps']} usable decisions "
                       f"({joined.stats['decisions']} logged, {joined.stats['sessions']} "
                       f"complete sessions); learning needs at least {request.min_decisions}")
    check_slate_learner(request.learner, joined)
    config = _run_config(engine, request, joined)
    settings = FeatureSettings.from_env_kwargs(config.env.kwargs)
    obs_space = observation_space(settings)
    learner = build_learner(config.agent.name, obs_space, action_space(settings, joined),
                            config.agent.settings, config.seed)
    buffer = fill_buffer(joined, obs_space)
    threads = torch.get_num_threads()  # the run config's thread count, as training uses
    torch.set_num_threads(config.train.torch_threads)  # (1: small networks on busy cores)
    try:
        stats = train_offline(learner, buffer, request.gradient_steps,
                              seed=np.random.SeedSequence([config.seed, 1]))
    finally:
        torch.set_num_threads(threads)
    summary = {"learner": config.agent.name, "seed": config.seed, "join": joined.stats,
               "transitions": len(buffer), "train": stats,
               "wall_time_s": time.perf_counter() - started}
    _write_run(out, config, learner, join, summary, engine)
    return summary


def _check_request(request: LearnRequest, out: Path) -> None:
    check_output_dir(out, "--out")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} already exists and is not empty; choose a new folder")
    spec = algorithm(request.learner)
    if not spec.offline:
        offline = [a.name for a in ALGORITHMS.values() if a.offline]
        raise ConfigError(f"learner '{request.learner}' cannot learn from a log; choose one "
                          f"of {offline}")
    if request.gradient_steps < 1:
        raise ConfigError(f"--gradient-steps must be at least 1, got {request.gradient_steps}")


def _run_config(engine, request: LearnRequest, joined: JoinedLog) -> RunConfig:
    """The candidate's run config: `request.config` or the live model's, with the agent
    switched to `request.learner` (shared settings carried over) and the seed set."""
    if request.config is not None:
        data = load_yaml(request.config)
    else:
        with engine.connect() as conn:
            live = store.live_model(conn)
            conn.rollback()
        if live is None:
            raise UsageError("no live model in the log to take the run config from; "
                             "give --config")
        data = load_yaml(Path(live["run_path"]) / "config.yaml")
    base = load_run_config(data)
    data = run_config_dict(base)
    if base.agent.name != request.learner:
        agent = derive_config(request.learner, base.agent.settings)
        data["agent"] = {"name": request.learner,
                         request.learner: to_dict(agent)}
    if request.seed is not None:
        data["seed"] = request.seed
    if joined.slate is not None:  # the candidate ranks lists of the log's size
        data["env"]["kwargs"]["slate_size"] = joined.stats["slate_size"]
    config = load_run_config(data)
    _check_widths(config, joined)
    return config


def _check_widths(config: RunConfig, joined: JoinedLog) -> None:
    """The log's features must have the widths the run config's model reads."""
    settings = FeatureSettings.from_env_kwargs(config.env.kwargs)
    s = joined.sessions
    want = (viewer_width(settings.topic_dim), settings.n_candidates)
    have = (s.viewer.shape[1], s.mask.shape[1])
    if want != have:
        raise ConfigError(f"the run config's model reads {want[0]} viewer features and "
                          f"{want[1]} candidates; the log holds {have[0]} and {have[1]} "
                          "(give the --config the served model was trained with)")


def slate_learners() -> list[str]:
    """Offline learners that learn from slates: those that replay the opened rank
    (`replay_codec`), so a click is credited to the item clicked, not to the top one."""
    return [a.name for a in ALGORITHMS.values()
            if a.offline and callable(getattr(a.build, "replay_codec", None))]


def check_slate_learner(name: str, joined: JoinedLog) -> None:
    """A slate log needs a slate learner, and a slate learner a slate log."""
    slate = name in slate_learners()
    if joined.slate is not None and not slate:
        raise ConfigError(f"learner '{name}' cannot learn from this log's slates (k = "
                          f"{joined.stats['slate_size']}): it would credit every slate's "
                          f"reward to its top item; choose one of {slate_learners()}")
    if joined.slate is None and slate:
        raise ConfigError(f"learner '{name}' learns from ranked slates, but this log's "
                          "decisions showed one item each (k = 1)")


def action_space(settings: FeatureSettings, joined: JoinedLog) -> spaces.Space:
    """One candidate per decision, or a ranked list of the log's slate size."""
    if joined.slate is None:
        return spaces.Discrete(settings.n_candidates)
    return spaces.MultiDiscrete([settings.n_candidates] * joined.stats["slate_size"])


def fill_buffer(joined: JoinedLog, obs_space: spaces.Dict) -> ReplayBuffer:
    """A replay buffer holding every joined transition once (all valid); slates keep
    the opened rank (`ClickCodec`)."""
    t = joined.transitions()
    codec: Any = DictCodec(obs_space)
    if joined.slate is not None:
        codec = ClickCodec(codec)
    n = len(t["action"])
    buffer = ReplayBuffer(codec, n, tuple(t["action"].shape[1:]))
    cast = {key: dtype for key, (_, dtype) in codec.fields.items()}
    buffer.add({k: v.astype(cast[k]) for k, v in t["obs"].items()}, t["action"],
               t["reward"].astype(np.float32),
               {k: v.astype(cast[k]) for k, v in t["next_obs"].items()},
               t["terminated"], np.ones(n, bool))
    return buffer


def _write_run(out: Path, config: RunConfig, learner: Any, join: JoinConfig,
               summary: dict[str, Any], engine) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(run_config_dict(config), out / "config.yaml")
    versions = {"torch": torch.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    save_json({"seed": config.seed, "versions": versions,
               "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "learned_from": engine.url.render_as_string(hide_password=True)},
              out / "meta.json")
    state = {"config": run_config_dict(config), "agent": learner.state_dict()}
    save_checkpoint(out / "checkpoints" / "best.pt", {"kind": "best", **state})
    save_checkpoint(out / "checkpoints" / "latest.pt", {"kind": "latest", **state})
    save_join_config(join, out / "join.yaml")
    save_json(summary, out / "learn.json")
