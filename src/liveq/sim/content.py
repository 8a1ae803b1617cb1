"""Titles and tags of simulated streamers, written from their hidden traits with noise.

A streamer's text is a title and four tags, each one phrase of a fixed vocabulary
(`PHRASES`): the title and the first two tags name the categories of the streamer's
strongest topic directions, the third tag hints at its hidden quality and the title may
shout like clickbait. Each phrase is replaced by a random one with chance `noise`, and the
quality and clickbait hints are given only with chance `cue`, so text is informative but
never a copy of the hidden state. A streamer's text is stored as four phrase ids
(`CONTENT_SLOTS`), which is all a checkpoint needs.

Categories: signed topic axis j (+e_0, -e_0, +e_1, ...) is category j mod len(CATEGORIES).
Draws use a generator seeded by the world's content seed and the tick of the arrival, so
the simulator's own random stream, and hence the world, is the same with content on or off.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from liveq.features.content import (
    ContentBasis,
    cache_dir,
    cached_embeddings,
    fit_basis,
    mean_vectors,
    project,
)
from liveq.sim.config import ContentConfig

CATEGORIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("shooter", ("ranked fps grind", "sniper clutch plays", "battle royale squads"),
     ("fps", "aim training", "tactical shooter")),
    ("cooking", ("cooking dinner live", "baking bread from scratch", "street food recipes"),
     ("recipes", "kitchen", "home cooking")),
    ("music", ("live guitar covers", "piano requests", "lofi beats session"),
     ("music", "singing", "instruments")),
    ("chatting", ("just chatting with chat", "morning coffee talk", "q&a and storytime"),
     ("just chatting", "talk show", "community")),
    ("strategy", ("grand strategy campaign", "chess puzzles and blitz", "city builder"),
     ("strategy", "chess", "board games")),
    ("art", ("digital painting", "character sketching", "pixel art commissions"),
     ("art", "drawing", "illustration")),
    ("fitness", ("morning workout", "yoga flow", "running on the treadmill"),
     ("fitness", "workout", "health")),
    ("speedrun", ("any% world record attempts", "speedrun practice", "glitch hunting"),
     ("speedrun", "retro games", "world record")),
    ("coding", ("building a web app", "coding a game engine", "debugging live"),
     ("programming", "software", "tech")),
    ("travel", ("walking tour of tokyo", "irl city stroll", "road trip stream"),
     ("irl", "travel", "outdoors")),
    ("horror", ("scary horror games at night", "haunted house exploration", "jumpscares"),
     ("horror", "spooky", "survival horror")),
    ("sports", ("football match watch party", "basketball highlights", "fantasy league draft"),
     ("sports", "football", "basketball")),
)
"""Per category: a name, title phrases and tag phrases (a vocabulary per topic)."""
HYPE = ("INSANE!!! you won't believe this", "GIVEAWAY!!! free skins every hour",
        "SHOCKING drama right now", "24h stream!!! craziest ever")
"""Titles a clickbait streamer shouts (the look promises more than the stream gives)."""
QUALITY_TAGS = (("high production", "pro setup", "professional"),
                ("low effort", "potato quality", "afk often"))
"""Hint tags for above-average and below-average hidden quality."""
NEUTRAL_TAGS = ("english", "new streamer", "chill vibes", "first time")
"""Tags that say nothing of topic or quality (given when the quality hint is not)."""

CONTENT_SLOTS = 4
"""Phrases per streamer: title, two topic tags, one quality tag."""


def _vocabulary() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    phrases: list[str] = []
    titles, tags = [], []
    for _, cat_titles, cat_tags in CATEGORIES:
        titles.append(range(len(phrases), len(phrases) + len(cat_titles)))
        phrases += cat_titles
        tags.append(range(len(phrases), len(phrases) + len(cat_tags)))
        phrases += cat_tags
    return tuple(phrases), np.array(titles), np.array(tags)


_BASE, TITLE_IDS, TAG_IDS = _vocabulary()
HYPE_IDS = np.arange(len(_BASE), len(_BASE) + len(HYPE))
_Q0 = len(_BASE) + len(HYPE)
QUALITY_IDS = np.arange(_Q0, _Q0 + 6).reshape(2, 3)
NEUTRAL_IDS = np.arange(_Q0 + 6, _Q0 + 6 + len(NEUTRAL_TAGS))
PHRASES: tuple[str, ...] = (_BASE + HYPE + QUALITY_TAGS[0] + QUALITY_TAGS[1]
                            + NEUTRAL_TAGS)
"""Every phrase a title or tag can be, in id order (what the encoder embeds once)."""


def categories(topic: np.ndarray) -> np.ndarray:
    """`(m, 2)` category of each streamer's strongest and second-strongest signed axis."""
    signed = np.concatenate([topic, -topic], axis=1)  # (m, 2d): +e_0.., then -e_0..
    order = np.argsort(-signed, axis=1, kind="stable")[:, :2]
    d = topic.shape[1]
    axis = np.where(order < d, 2 * order, 2 * (order - d) + 1)  # +e_j -> 2j, -e_j -> 2j+1
    return axis % len(CATEGORIES)


def draw_content(topic: np.ndarray, quality: np.ndarray, bait: np.ndarray,
                 cfg: ContentConfig, rng: np.random.Generator) -> np.ndarray:
    """`(m, CONTENT_SLOTS)` phrase ids: title, two topic tags, a quality tag."""
    m, n_cat = len(topic), len(CATEGORIES)
    cats = categories(topic)
    noisy = rng.random((m, 3)) < cfg.noise
    cats3 = np.where(noisy, rng.integers(0, n_cat, (m, 3)), cats[:, [0, 0, 1]])
    pick = rng.integers(0, 3, (m, 3))
    ids = np.empty((m, CONTENT_SLOTS), dtype=np.int64)
    ids[:, 0] = TITLE_IDS[cats3[:, 0], pick[:, 0]]
    ids[:, 1:3] = TAG_IDS[cats3[:, 1:], pick[:, 1:]]
    shout = (rng.random(m) < cfg.cue) & bait
    ids[:, 0] = np.where(shout, HYPE_IDS[rng.integers(0, len(HYPE), m)], ids[:, 0])
    hint = rng.random(m) < cfg.cue
    quality_tag = QUALITY_IDS[(quality < 0).astype(np.int64), rng.integers(0, 3, m)]
    neutral = NEUTRAL_IDS[rng.integers(0, len(NEUTRAL_IDS), m)]
    ids[:, 3] = np.where(hint, quality_tag, neutral)
    return ids


def render(ids: np.ndarray) -> tuple[str, tuple[str, ...]]:
    """The title and tags of one streamer's phrase ids `(CONTENT_SLOTS,)`."""
    title, *tags = (PHRASES[int(i)] for i in ids)
    return title, tuple(tags)


class ContentModel(NamedTuple):
    """What turns phrase ids into content columns: phrase embeddings and the basis."""

    phrase_table: np.ndarray  # (len(PHRASES), E) float32 unit sentence embeddings
    basis: ContentBasis

    def columns(self, ids: np.ndarray) -> np.ndarray:
        """`(m, dim)` float32 content columns of phrase ids `(m, CONTENT_SLOTS)`."""
        return project(mean_vectors(ids, self.phrase_table), self.basis)


REFERENCE_STREAMERS = 4096
"""Streamers of the fixed reference sample the principal axes are fitted on."""
REFERENCE_TOPIC_DIM = len(CATEGORIES) // 2
"""Topic dimension of the reference sample: one signed axis per category."""


@functools.lru_cache(maxsize=8)
def _load_model(folder: str, encoder: str, dim: int, noise: float,
                cue: float) -> ContentModel:
    phrase_table = cached_embeddings(PHRASES, encoder=encoder, folder=Path(folder))
    rng = np.random.default_rng(0)
    topic = rng.normal(size=(REFERENCE_STREAMERS, REFERENCE_TOPIC_DIM))
    topic /= np.linalg.norm(topic, axis=1, keepdims=True)
    quality, bait = rng.normal(size=REFERENCE_STREAMERS), rng.random(REFERENCE_STREAMERS) < 0.3
    ids = draw_content(topic, quality, bait, ContentConfig(noise=noise, cue=cue), rng)
    return ContentModel(phrase_table, fit_basis(mean_vectors(ids, phrase_table), dim))


def content_model(cfg: ContentConfig) -> ContentModel:
    """The phrase embeddings (cached on disk) and principal axes for `cfg`, built once per
    process; the axes are fitted on a fixed reference sample, so they are the same for
    every world and seed (a policy trained on one world reads another's columns alike)."""
    return _load_model(str(cache_dir(cfg.cache_dir)), cfg.encoder, cfg.dim, cfg.noise, cfg.cue)
