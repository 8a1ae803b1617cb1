"""liveq/LiveRoom-v0: the env bar (check_env, seeding, vector = single), its key
mechanisms against hand-worked numbers, rate fitting and config errors."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import liveq  # noqa: F401  (registers the envs)
from liveq.core.errors import ConfigError, InvalidActionError
from liveq.policies.baselines import baseline_fits, make_baseline
from liveq.sim.room_config import RoomConfig
from liveq.sim.room_core import GIFT, RoomCore, fit_rates, measured_rates


def make_vec(n, **kwargs):
    return gym.make_vec("liveq/LiveRoom-v0", num_envs=n,
                        vectorization_mode="vector_entry_point", **kwargs)


def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out = [np.asarray(obs)]
    for a in actions:
        obs, reward, term, trunc, _ = env.step(a)
        out.append(np.asarray(obs))
        out.append(np.asarray([reward, term, trunc], dtype=float))
        if np.ndim(term) == 0 and (term or trunc):
            obs, _ = env.reset()
            out.append(np.asarray(obs))
    return out


def test_check_env_with_warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make("liveq/LiveRoom-v0").unwrapped)


def test_same_seed_same_trajectory():
    actions = np.random.default_rng(1).integers(0, 5, (200, 8))
    a = rollout(make_vec(8), 3, actions)
    b = rollout(make_vec(8), 3, actions)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = rollout(make_vec(8), 4, actions)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_vector_equals_single_for_a_batch_of_one():
    single, vec = gym.make("liveq/LiveRoom-v0").unwrapped, make_vec(1)
    obs_s, _ = single.reset(seed=7)
    obs_v, _ = vec.reset(seed=7)
    actions = np.random.default_rng(0).integers(0, 5, 100)
    for a in actions:
        np.testing.assert_array_equal(obs_s, obs_v[0])
        obs_s, r_s, t_s, u_s, _ = single.step(int(a))
        obs_v, r_v, t_v, u_v, _ = vec.step(np.array([a]))
        assert (r_s, t_s, u_s) == (r_v[0], t_v[0], u_v[0])
        if t_s or u_s:
            break
    assert len(actions) > 5


def test_a_second_ignored_prompt_annoys_more():
    """By hand: a gift prompt to a viewer who never gives (fit 0) is ignored and adds
    0.2; the next minute the first memory has decayed to 0.85, so the second adds
    0.2 * (1 + 0.85) = 0.37 on top of 0.2 * 0.85 kept."""
    core = RoomCore(RoomConfig(gift_rate=0.0), 1)
    core.reset(0)
    core.gift_prop[:] = 0.0
    core.step(np.array([1 + GIFT]))
    assert core.annoyance[0] == pytest.approx(0.2)
    core.step(np.array([1 + GIFT]))
    assert core.annoyance[0] == pytest.approx(0.2 * 0.85 + 0.2 * 1.85)
    assert core.ignored[0, GIFT] == pytest.approx(1.85)


def _stay(action, seed=0, n=4000):
    env = make_vec(n, max_minutes=30)
    env.reset(seed=seed)
    minutes, ended = np.zeros(n), np.zeros(n, dtype=bool)
    for _ in range(30):
        _, _, term, trunc, _ = env.step(np.full(n, action))
        minutes += ~ended
        ended |= term | trunc
    return minutes.mean()


def test_annoyance_measurably_raises_leaving():
    # Prompting to follow every minute: the follow prompt is ignored after the follow
    # and by most viewers before it, so annoyance piles up and stays shorten.
    quiet, nagged = _stay(0), _stay(3)
    assert nagged < 0.8 * quiet


def test_fit_rates_hits_the_target_rates():
    fitted = fit_rates(RoomConfig(max_minutes=30), 0.03, 0.12, n_viewers=3000)
    gifts, comments = measured_rates(fitted, n_viewers=6000, seed=11)
    assert gifts == pytest.approx(0.03, rel=0.08)
    assert comments == pytest.approx(0.12, rel=0.05)


@pytest.mark.parametrize("field,value", [("gift_rate", 1.5), ("annoyance_decay", 1.0),
                                         ("max_minutes", 0), ("weight_follow", -1.0)])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        gym.make("liveq/LiveRoom-v0", **{field: value})


def test_bad_action_is_refused():
    env = make_vec(2)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError):
        env.step(np.array([0, 5]))


def test_baselines_act_as_described():
    env = make_vec(64, max_minutes=30)
    obs, _ = env.reset(seed=0)
    assert baseline_fits("moment", "liveq/LiveRoom-v0")
    assert not baseline_fits("popular", "liveq/LiveRoom-v0")
    never = make_baseline("never", env)
    assert (never.act(obs).actions == 0).all()
    schedule = make_baseline("schedule", env)
    fake = np.zeros((6, 16), dtype=np.float32)
    fake[:, 0] = np.array([0, 4, 5, 10, 20, 25]) / 30
    np.testing.assert_array_equal(schedule.act(fake).actions, [0, 0, 1, 2, 4, 1])
    moment = make_baseline("moment", env)
    chosen = moment.act(obs).actions
    quiet = obs[:, 1] < 0.75
    assert (chosen[quiet] == 0).all()
    np.testing.assert_allclose(moment.probabilities(obs).sum(axis=1), 1.0)


def test_rates_from_a_kuailive_folder(tmp_path):
    """By hand: 2 clicks watching 30 + 70 minutes, 3 gifts and 10 comments give 0.03
    gifts and 0.1 comments per viewer-minute."""
    from liveq.data.room_rates import fit_room_to_kuailive, kuailive_room_rates

    head = "user_id,live_id,streamer_id,timestamp"
    (tmp_path / "click.csv").write_text(f"{head},watch_live_time\n1,1,1,0,1800000\n"
                                        "2,1,1,0,4200000\n")
    (tmp_path / "gift.csv").write_text(f"{head},gift_price\n" + "1,1,1,5,2\n" * 3)
    (tmp_path / "comment.csv").write_text(f"{head}\n" + "2,1,1,9\n" * 10)
    assert kuailive_room_rates(tmp_path) == pytest.approx((0.03, 0.1))
    fitted = fit_room_to_kuailive(tmp_path, RoomConfig(max_minutes=20), n_viewers=2000)
    gifts, comments = measured_rates(fitted, n_viewers=4000, seed=5)
    assert gifts == pytest.approx(0.03, rel=0.1)
    assert comments == pytest.approx(0.1, rel=0.06)


def test_compare_runs_dqn_and_the_room_baselines(tmp_path, capsys):
    from liveq.cli.main import main

    out = tmp_path / "runs"
    assert main(["compare", "--config", "liveroom_small", "--agents", "popular", "--out",
                 str(out)]) == 2
    assert "['popular'] do not fit liveq/LiveRoom-v0" in capsys.readouterr().err
    assert main(["compare", "--config", "liveroom_small", "--agents", "dqn,never,schedule,moment",
                 "--steps", "600", "--episodes", "32", "--out", str(out),
                 "--no-progress"]) == 0
    table = capsys.readouterr().out
    for name in ("dqn", "never", "schedule", "moment"):
        assert any(line.startswith(name) for line in table.splitlines())
