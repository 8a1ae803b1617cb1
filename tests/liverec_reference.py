"""REFERENCE, not liveq code: the LiveRec code's baseline evaluation, transcribed.

A faithful small transcription (pure Python and numpy, no torch or pandas) of how
github.com/JRappaz/liverec (commit 27eaf33) evaluates its POP and REP baselines, so that
tests can hold liveq's `--compat liverec` to it. It follows, step by step:

* `data.py` `load_data`: headerless `user,stream,streamer,start,stop`; users and streamers
  factorized in order of first appearance, plus one (0 is padding); `max_step` the larger
  of the last start and stop; `pivot_1 = max_step - 500`, `pivot_2 = max_step - 250`;
  `ts[s]` the distinct streamers of the rows with `start <= s < stop`.
* `data.py` `get_sequences(data, pivot_2, max_step)`: the rows with `stop < max_step`,
  grouped by user and sorted by start; the last `seq_len + 1 = 17`; skipped when fewer than
  2; the last one is the target, kept when `pivot_2 <= start < max_step`; the 16 before are
  `items`; `targets = items[1:] + [target]`; both right-aligned in 16 slots, 0 padded
  (`custom_collate`).
* `main.py`: `data_tr = data_fu[data_fu.stop < pivot_1]`; baselines run on the test loader.
* `baselines.py` `POP.compute_rank` / `REP.compute_rank`: repeat when `pos[-1]` is in the
  non-zero `pos[:-1]`; candidates `ts[target start]`; POP scores `Counter(data_tr.streamer)`,
  REP scores `Counter(inputs[:-1])`; the rank is the target's position in descending score.
* `eval.py` `metrics`: HR@k = share of ranks `< k`, for `rrep`, `rnew` and `rall`.

One change, which the comparison needs: the code's `scores.argsort()[::-1]` breaks ties by
candidate order (first appearance in the file); here the candidates are shuffled with
`rng` and sorted stably, so ties are broken uniformly at random, as liveq does.
Rows of one user with the same start would be ordered arbitrarily by pandas' sort; callers
use logs without them.
"""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np

SEQ_LEN = 16


def load(path, names=False):
    """`(user, streamer, start, stop)` int arrays, ids factorized from 1 (`load_data`);
    with `names`, also the raw user and streamer names by id (index 0 is padding)."""
    with open(path, newline="") as handle:
        raw = [row for row in csv.reader(handle) if row]
    users, streamers = {}, {}
    for row in raw:
        users.setdefault(row[0], len(users) + 1)
        streamers.setdefault(row[2], len(streamers) + 1)
    user = np.array([users[r[0]] for r in raw])
    streamer = np.array([streamers[r[2]] for r in raw])
    start = np.array([int(r[3]) for r in raw])
    stop = np.array([int(r[4]) for r in raw])
    if names:
        return user, streamer, start, stop, [None, *users], [None, *streamers]
    return user, streamer, start, stop


def availability(streamer, start, stop, max_step):
    """`ts[s]`: the distinct streamers live at `s`, in order of first appearance."""
    ts = {}
    for s in range(max_step + 1):
        live = streamer[(start <= s) & (stop > s)]
        ts[s] = list(dict.fromkeys(live.tolist()))
    return ts


def sequences(user, streamer, start, stop, p1, p2):
    """`get_sequences` + `custom_collate`: per kept user, right-aligned `inputs` (items),
    `pos` (shifted targets) and the target's start step."""
    keep = stop < p2
    out = []
    for u in sorted(set(user[keep].tolist())):
        rows = np.flatnonzero(keep & (user == u))
        rows = rows[np.argsort(start[rows], kind="stable")][-(SEQ_LEN + 1):]
        if len(rows) < 2:
            continue
        last, hist = rows[-1], rows[:-1]
        if start[last] < p1 or start[last] >= p2:
            continue
        items = streamer[hist].tolist()
        targets = items[1:] + [int(streamer[last])]
        pad = [0] * (SEQ_LEN - len(items))
        out.append({"inputs": pad + items, "pos": pad + targets, "ts": int(start[last]),
                    "user": u})
    return out


def random_tie_rank(scores, idx, rng):
    """The target's 0-based position in descending score, ties in random order."""
    perm = rng.permutation(len(scores))
    order = perm[np.argsort(-np.asarray(scores, dtype=float)[perm], kind="stable")]
    return int(np.flatnonzero(order == idx)[0])


def scored(model, seq, ts, cnt_train):
    """One sequence as the baseline sees it: `(is_repeat, candidates, scores)`."""
    pos, inputs = seq["pos"], seq["inputs"]
    avt = [p for p in pos[:-1] if p != 0]
    av = ts[seq["ts"]]
    cnt = cnt_train if model == "POP" else Counter(inputs[:-1])
    return pos[-1] in avt, av, [cnt[a] for a in av]


def compute_ranks(model, seqs, ts, cnt_train, rng):
    """`POP.compute_rank` / `REP.compute_rank` over all sequences: the stores."""
    store = {"rrep": [], "rnew": [], "rall": []}
    for seq in seqs:
        is_rep, av, scores = scored(model, seq, ts, cnt_train)
        rank = random_tie_rank(scores, av.index(seq["pos"][-1]), rng)
        store["rrep" if is_rep else "rnew"].append(rank)
        store["rall"].append(rank)
    return store


def metrics(ranks):
    """`eval.metrics`, hit rates only."""
    a = np.array(ranks)
    tot = float(len(a))
    return {"h01": (a < 1).sum() / tot, "h05": (a < 5).sum() / tot,
            "h10": (a < 10).sum() / tot}


def prepare(path):
    """`load_data` + `get_sequences` on test + `data_tr`: `(seqs, ts, cnt_train)`."""
    user, streamer, start, stop = load(path)
    max_step = int(max(start.max(), stop.max()))
    p1, p2 = max_step - 500, max_step - 250
    ts = availability(streamer, start, stop, max_step)
    cnt_train = Counter(streamer[stop < p1].tolist())
    return sequences(user, streamer, start, stop, p2, max_step), ts, cnt_train


def evaluate(path, model, seed=0, prepared=None):
    """`main.py` for a baseline: `{"all"|"new"|"rep": {"h01", "h05", "h10"}}` on test
    (`prepared`: `prepare(path)` already computed, for several seeds)."""
    seqs, ts, cnt_train = prepared or prepare(path)
    store = compute_ranks(model, seqs, ts, cnt_train, np.random.default_rng(seed))
    return {"all": metrics(store["rall"]), "new": metrics(store["rnew"]),
            "rep": metrics(store["rrep"])}
