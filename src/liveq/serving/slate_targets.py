"""The gate on a log of slates: each model's slate distribution at every logged state.

A decision that showed a list of `L` was drawn by the serving policy ranking
`max(1, min(k, allowed))` items (`liveq.serving.policy_log.decide`), inside that
decision's logged exploration. A model is read the same way: for the rows sharing an
exploration setting and a list length, `serving_policy(model, length, exploration)` gives
the probability of the logged list (`slate_probability`) and the per-rank marginals
(`probabilities`, zero on ranks the decision left empty). Steps where nothing could be
shown are no decision: probability 1, no marginals, for every model as in the log.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from liveq.core.errors import CheckpointError
from liveq.ope.gate import GateConfig, GateVerdict
from liveq.ope.slate_gate import slate_gate
from liveq.ope.slate_sessions import SlateLog, SlateTarget
from liveq.serving.join import JoinedLog
from liveq.serving.model import ServedModel, serving_policy

GREEDY = json.dumps({"kind": "epsilon", "epsilon": 0.0})


def slate_target(model: ServedModel, joined: JoinedLog, decisions: dict[str, dict],
                 target: str) -> SlateTarget:
    """`model`'s `SlateTarget` at the joined states: each decision's logged exploration
    (`served`) or none (`greedy`)."""
    data, steps = joined.sessions, joined.slate
    n, k = data.mask.shape
    if model.settings.n_candidates != k:
        raise CheckpointError(f"model {model.version} reads {model.settings.n_candidates} "
                              f"candidates; the log's tables hold {k}")
    size = steps.slates.shape[1]
    lengths = np.maximum(1, np.minimum(size, data.mask.sum(axis=1)))
    settings = np.array([json.dumps(decisions[d]["exploration"], sort_keys=True)
                         if target == "served" else GREEDY for d in joined.decision_ids])
    probability, marginals = np.ones(n), np.zeros((n, size, k))
    obs = data.observations()
    decided = data.mask.any(axis=1)
    for setting, length in sorted({(s, int(m)) for s, m in zip(settings[decided],
                                                                lengths[decided],
                                                                strict=True)}):
        rows = np.flatnonzero(decided & (settings == setting) & (lengths == length))
        policy = serving_policy(model, length, json.loads(setting), np.random.default_rng(0))
        sub = {key: value[rows] for key, value in obs.items()}
        marginals[rows, :length] = np.asarray(policy.probabilities(sub)).reshape(
            len(rows), length, k)
        probability[rows] = policy.slate_probability(sub, steps.slates[rows, :length])
    return SlateTarget(probability, marginals)


def judge_slates(joined: JoinedLog, decisions: dict[str, dict[str, Any]], live: ServedModel,
                 candidate: ServedModel, config: GateConfig, target: str) -> GateVerdict:
    """The slate gate's verdict on replacing `live` by `candidate` on the joined log."""
    log = SlateLog(joined.sessions, joined.slate.slates, joined.slate.probability)
    return slate_gate(log, slate_target(live, joined, decisions, target),
                      slate_target(candidate, joined, decisions, target), config)
