"""What the service is told: its own settings, and the feature settings of a served model.

`ServeConfig` is the command line's `liveq serve` options; `FeatureSettings` holds the
env settings a model's observations depend on (table size, topic dimension, scales,
the feed's slots, the logging rules' rates), read from the run's `env.kwargs`. The
defaults are the LiveStream simulator's (`tests/test_serving_model.py` checks they stay
equal), so a run trained on the default world needs no kwargs to be served.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveq.core.config import from_dict, require

DEFAULT_MAX_BODY_BYTES = 1 << 20


@dataclass(kw_only=True)
class FeatureSettings:
    """The env settings that define a model's observation and the viewer logging rules."""

    n_candidates: int = 16
    """Rows K of the candidate table the model scores."""
    topic_dim: int = 6
    """Dimension of the topic vectors of streamers and viewer profiles."""
    step_minutes: float = 10.0
    """Minutes one recommendation stands for; a watch of this long is a share of 1."""
    max_session_steps: int = 80
    """Scale of the session-step feature."""
    followed_slots: int = 4
    """Candidate slots reserved for followed streamers who are live."""
    trending_slots: int = 4
    """Candidate slots for the most-watched live streams."""
    max_follows: int = 8
    """Length of a viewer's follow list."""
    history_slots: int = 8
    """Streamers per viewer whose watched minutes are remembered."""
    fatigue_decay: float = 0.6
    """Share of recent-topic exposure kept from one recommendation to the next."""
    profile_rate: float = 0.2
    """How far the profile moves toward a watched topic per unit of watch share."""
    cold_start_prior: float = 20.0
    """Pseudo-impressions behind a streamer's CTR and watch estimates."""

    def validate(self) -> None:
        for name in ("n_candidates", "topic_dim", "max_session_steps", "max_follows",
                     "history_slots"):
            require(getattr(self, name) >= 1, f"{name} must be at least 1")
        require(self.followed_slots + self.trending_slots <= self.n_candidates,
                "followed_slots + trending_slots cannot exceed n_candidates")
        require(0.0 <= self.fatigue_decay < 1.0, "fatigue_decay must be in [0, 1)")
        require(self.step_minutes > 0 and self.cold_start_prior > 0,
                "step_minutes and cold_start_prior must be positive")

    @classmethod
    def from_env_kwargs(cls, kwargs: dict[str, Any]) -> FeatureSettings:
        """The settings a run's `env.kwargs` give (other simulator keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return from_dict(cls, {k: v for k, v in kwargs.items() if k in names}, "env.kwargs")


@dataclass(kw_only=True)
class ServeConfig:
    """Everything `liveq serve` is told on its command line."""

    model: str
    """Run folder of the model to serve (registered, and made live when none is live)."""
    db: str | None = None
    """SQLAlchemy URL of the log; None: SQLite (WAL) at `<state_dir>/log.db`."""
    state_dir: str = "./liveq-serve"
    """Folder for the default database and the metrics of several workers."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8000
    """Port to listen on."""
    workers: int = 1
    """Worker processes (uvicorn's)."""
    api_key: str | None = None
    """Key the admin routes require in the X-API-Key header; None disables them."""
    epsilon: float | None = None
    """Epsilon-greedy exploration share (the default, 0.1, when neither is given)."""
    temperature: float | None = None
    """Softmax exploration temperature instead of epsilon-greedy."""
    log_sample: float = 1.0
    """Share of decisions logged in full (features and distributions)."""
    myopic: str | None = None
    """Run folder of a myopic (gamma 0) model: its Q-value is the explanation's expected
    immediate reward."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted."""
    session_gap_minutes: float = 30.0
    """A viewer silent this long starts a new session at the next request."""

    def validate(self) -> None:
        require(1 <= self.port <= 65535, f"port must be in 1..65535, got {self.port}")
        require(self.workers >= 1, f"workers must be at least 1, got {self.workers}")
        require(not (self.epsilon is not None and self.temperature is not None),
                "give --epsilon or --temperature, not both")
        require(self.epsilon is None or 0.0 <= self.epsilon <= 1.0,
                f"epsilon must be in [0, 1], got {self.epsilon}")
        require(self.temperature is None or self.temperature > 0,
                f"temperature must be positive, got {self.temperature}")
        require(0.0 < self.log_sample <= 1.0,
                f"log_sample must be in (0, 1], got {self.log_sample}")
        require(self.max_body_bytes >= 1024, "max_body_bytes must be at least 1024")
        require(self.session_gap_minutes > 0, "session_gap_minutes must be positive")
        require(self.api_key is None or len(self.api_key) >= 8,
                "api key must be at least 8 characters")

    @property
    def exploration(self) -> dict[str, Any]:
        """The exploration settings, as logged with every decision."""
        if self.temperature is not None:
            return {"kind": "softmax", "temperature": self.temperature}
        return {"kind": "epsilon", "epsilon": 0.1 if self.epsilon is None else self.epsilon}

    def database_url(self) -> str:
        """The log's URL (the default SQLite file lives in `state_dir`)."""
        if self.db:
            return self.db
        return f"sqlite:///{(Path(self.state_dir) / 'log.db').resolve()}"


def serve_config(**values: Any) -> ServeConfig:
    """A checked `ServeConfig` (a `ConfigError` names the bad option)."""
    return from_dict(ServeConfig, values, "serve")
