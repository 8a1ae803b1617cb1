"""`python -m liveq.experiments.dqn_speed`: variants parse, runs repeat bit for bit, and a
variant that trains differently shows another fingerprint."""

import pytest

from liveq.core.config import ConfigError
from liveq.experiments.dqn_speed import main, parse_variant, run


def test_parse_variant():
    assert parse_variant("demo=") == ("demo", {})
    assert parse_variant("plain=reward_head=false,gamma=0.9") == (
        "plain", {"reward_head": False, "gamma": 0.9})
    with pytest.raises(ConfigError, match="--variant expects"):
        parse_variant("=gamma=0.9")


def test_repeats_match_and_another_training_differs():
    early = {"learning_starts": 128}  # 8 gradient steps after each of the 2 vector steps
    runs = run([("demo", early), ("gamma", {**early, "gamma": 0.5})], steps=256, repeats=2)
    demo, other = runs["demo"], runs["gamma"]
    assert demo[0]["env_steps"] == 256 and demo[0]["updates"] == 16
    assert demo[0]["env_steps_per_s"] > 0
    assert demo[0]["weights"] == demo[1]["weights"] != other[0]["weights"]


def test_unknown_setting_is_refused():
    with pytest.raises(ConfigError, match="DQN has no setting 'gama'"):
        main(["--steps", "128", "--repeats", "1", "--variant", "typo=gama=0.9"])
