"""Why a decision ranked what it showed: score parts and the features that weighed most.

The served Q-value of a candidate is the expected return of showing it: immediate reward
plus future value. A DQN has one head for their sum, so the split needs a second model:
with a myopic run (gamma 0, `liveq serve --myopic RUN`), its Q-value is the expected
immediate reward and the rest is future value. Without one the split is not made up:
`immediate` and `future` are null and `split` says why.

The weights are gradient x input of the item's Q-value (a first-order attribution over
the viewer vector and the item's own candidate row), largest magnitude first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from liveq.features.schema import CANDIDATE_FEATURES, viewer_column_names
from liveq.serving.model import ServedModel

TOP_FEATURES = 5


def _obs(features: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"viewer": np.asarray(features["viewer"], np.float32)[None],
            "candidates": np.asarray(features["candidates"], np.float32)[None],
            "mask": np.asarray(features["mask"], np.int8)[None]}


def attributions(model: ServedModel, obs: dict[str, np.ndarray], position: int
                 ) -> list[dict[str, Any]]:
    """The `TOP_FEATURES` largest gradient x input terms of candidate `position`'s Q."""
    q_net = getattr(model.greedy, "q_net", None)
    if q_net is None:
        return []
    viewer = torch.tensor(obs["viewer"], requires_grad=True)
    candidates = torch.tensor(obs["candidates"], requires_grad=True)
    with torch.enable_grad():
        q = q_net({"viewer": viewer, "candidates": candidates,
                   "mask": torch.as_tensor(obs["mask"]).bool()})
        q[0, position].backward()
    names = [f"viewer.{n}" for n in viewer_column_names(model.settings.topic_dim)]
    names += [f"candidate.{n}" for n in CANDIDATE_FEATURES]
    terms = np.concatenate([(viewer.grad * viewer).detach().numpy()[0],
                            (candidates.grad * candidates).detach().numpy()[0, position]])
    values = np.concatenate([obs["viewer"][0], obs["candidates"][0, position]])
    top = np.argsort(-np.abs(terms), kind="stable")[:TOP_FEATURES]
    return [{"feature": names[i], "value": float(values[i]), "weight": float(terms[i])}
            for i in top]


def explain(decision: dict[str, Any], model: ServedModel,
            myopic: ServedModel | None) -> dict[str, Any]:
    """The explanation of a logged decision (its full record must be logged)."""
    obs = _obs(decision["features"])
    scores = model.greedy.scores(obs)[0]
    immediate = None
    if myopic is not None and myopic.settings == model.settings:
        immediate = myopic.greedy.scores(obs)[0]
        split = f"immediate = Q of the myopic model {myopic.version}; future = score - immediate"
    elif myopic is not None:
        split = (f"not split: the myopic model {myopic.version} was trained on other "
                 "feature settings")
    else:
        split = ("not split: the model has no immediate-reward head; start the service "
                 "with --myopic RUN (a gamma-0 run) to split each score")
    items = []
    for rank, (streamer, position) in enumerate(zip(decision["slate"],
                                                    decision["slate_positions"], strict=True)):
        score = float(scores[position])
        now = None if immediate is None else float(immediate[position])
        items.append({"rank": rank, "streamer_id": streamer, "score": score,
                      "immediate": now, "future": None if now is None else score - now,
                      "top_features": attributions(model, obs, position)})
    return {"decision_id": decision["decision_id"], "model_version": model.version,
            "split": split, "items": items}
