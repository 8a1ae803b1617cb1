"""Config loading rejects what cannot be a config: non-finite numbers, binary files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from liveq.core.config import from_dict, load_yaml
from liveq.core.errors import ConfigError, LiveqError
from liveq.train.config import RunConfig


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_float_fields_are_refused_with_their_path(tmp_path, value):
    path = tmp_path / "run.yaml"
    path.write_text(f"agent:\n  dqn:\n    lr: {value}\n")
    with pytest.raises(ConfigError, match=r"agent\.dqn\.lr: expected a finite number"):
        from_dict(RunConfig, load_yaml(path))


def test_non_finite_numbers_inside_env_kwargs_name_the_whole_key():
    data = {"env": {"id": "liveq/LiveStream-v0", "kwargs": {"rewards": {"click": float("nan")}}}}
    with pytest.raises(ConfigError, match=r"env\.kwargs\.rewards\.click: expected a finite"):
        from_dict(RunConfig, data)


def test_binary_config_file_is_a_config_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02}q\x00")
    with pytest.raises(ConfigError, match="not a text file"):
        load_yaml(path)


def test_every_liveq_error_is_one_family():
    assert issubclass(ConfigError, LiveqError) and issubclass(ConfigError, ValueError)


def test_shipped_configs_load_by_name_from_an_installed_wheel(tmp_path):
    """The configs are package data: a wheel installed elsewhere finds them by name."""
    root, source = Path(__file__).resolve().parents[1], tmp_path / "source"
    source.mkdir()  # build from a copy: setuptools writes build/ beside pyproject.toml
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    shutil.copytree(root / "src" / "liveq", source / "src" / "liveq",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel")], check=True)
    wheel = next((tmp_path / "wheel").glob("liveq-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True)
    code = ("import liveq.core.config as c, liveq.train.config as t; "
            "assert '/site/' in c.__file__; "
            "print(t.load_run_config(c.load_yaml('livestream_default')).env.id)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, text=True,
                         capture_output=True, env=env)
    assert out.stdout.strip() == "liveq/LiveStream-v0"


def test_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="livestream_default"):
        load_yaml("livestream_defualt")


def test_numbers_yaml_reads_as_strings_are_taken_as_meant(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("agent:\n  dqn:\n    lr: 1e-3\n    batch_size: 1e2\ntrain:\n"
                    "  total_env_steps: 2.0e5\n")
    config = from_dict(RunConfig, load_yaml(path))
    assert config.agent.dqn.lr == 0.001 and config.agent.dqn.batch_size == 100
    assert config.train.total_env_steps == 200_000


@pytest.mark.parametrize(("text", "message"), [
    ("batch_size: 1.5", r"agent\.dqn\.batch_size: expected an integer, got 1\.5"),
    ("batch_size: lots", r"agent\.dqn\.batch_size: expected an integer, got 'lots'"),
    ("lr: nan", r"agent\.dqn\.lr: expected a finite number, got nan"),
    ("double: 1", r"agent\.dqn\.double: expected true or false, got 1"),
])
def test_values_that_are_not_what_the_field_needs(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(f"agent:\n  dqn:\n    {text}\n")
    with pytest.raises(ConfigError, match=message):
        from_dict(RunConfig, load_yaml(path))
