"""Request and response bodies of the API, with their limits (pydantic)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Count = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
MAX_CATALOGUE = 100_000
MAX_K = 50


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamerState(Strict):
    """One live streamer as the platform observes it."""

    streamer_id: Id
    topic: list[Annotated[float, Field(ge=-10, le=10, allow_inf_nan=False)]] = Field(
        min_length=1, max_length=256, description="topic vector (the model's topic_dim)")
    viewers: Count = Field(description="audience now")
    minutes_live: Count = Field(0, description="minutes since the stream started")
    impressions: Count = Field(0, description="times shown to anyone, logged")
    clicks: Count = Field(0, description="times opened, logged")
    watch_share: Count = Field(0, description="sum over clicks of the share watched")
    age_minutes: Count = Field(0, description="minutes since the streamer was first seen")


class Catalogue(Strict):
    streamers: list[StreamerState] = Field(max_length=MAX_CATALOGUE)


class CatalogueResult(BaseModel):
    live: int
    went_offline: int


class GoLive(Strict):
    viewers: Count | None = None


class Context(Strict):
    time: datetime | None = Field(None, description="the viewer's time (ISO 8601); now "
                                                    "when left out")
    device: Annotated[str, Field(max_length=32)] | None = None


class RecommendRequest(Strict):
    viewer_id: Id
    context: Context | None = None
    candidates: list[Id] | None = Field(None, min_length=1, max_length=MAX_CATALOGUE,
                                        description="rank only these live streamers")
    k: int = Field(1, ge=1, le=MAX_K, description="items to return")
    idempotency_key: Id | None = Field(
        None, description="a retried request with the same key gets the first decision "
                          "again (same decision_id and slate), and no second decision is "
                          "logged")


class RecommendedItem(BaseModel):
    streamer_id: str
    rank: int
    score: float | None
    probability: float | None = Field(description="probability of this item at this rank "
                                                  "under the serving policy")


class RecommendResponse(BaseModel):
    decision_id: str
    items: list[RecommendedItem]
    slate_probability: float
    policy_version: str
    arm: str
    exploration: dict


EventType = Literal["impression", "click", "watch", "gift", "comment", "follow",
                    "session_end"]


class Feedback(Strict):
    decision_id: Annotated[str, Field(min_length=32, max_length=32, pattern="^[0-9a-f]+$")]
    type: EventType
    idempotency_key: Id
    streamer_id: Id | None = Field(None, description="which shown item (default: the "
                                                     "first)")
    minutes: float | None = Field(None, gt=0, le=1440, allow_inf_nan=False)
    value: float | None = Field(None, ge=0, le=1e9, allow_inf_nan=False)

    @field_validator("minutes", "value")
    @classmethod
    def finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class FeedbackResponse(BaseModel):
    event_id: int
    decision_id: str
    type: str
    accepted: bool = True


MAX_BATCH_EVENTS = 1000


class FeedbackBatch(Strict):
    events: list[Feedback] = Field(min_length=1, max_length=MAX_BATCH_EVENTS,
                                   description="committed together, in this order")


class BatchResult(BaseModel):
    status: int = Field(description="200 when the event is in the log (or its key was "
                                    "seen before); the 4xx it would have got alone")
    event_id: int | None = None
    decision_id: str | None = None
    type: str | None = None
    accepted: bool = False
    detail: str | None = Field(None, description="why the event was refused")


class FeedbackBatchResponse(BaseModel):
    results: list[BatchResult]


class RegisterModel(Strict):
    run: Annotated[str, Field(min_length=1, max_length=4096)]


class Arm(Strict):
    name: Id
    model: Id
    share: float = Field(gt=0, le=1, allow_inf_nan=False)


class Split(Strict):
    arms: list[Arm] = Field(max_length=16)
