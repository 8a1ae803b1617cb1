"""The README's configuration reference is the one the code generates, field for field."""

from __future__ import annotations

from pathlib import Path

from liveq.cli.reference import END, START, config_reference, field_docs
from liveq.sim.config import LiveStreamConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_matches_the_code():
    text = README.read_text()
    shown = text[text.index(START):text.index(END) + len(END)]
    assert shown == config_reference(), "run `python -m liveq.cli.reference` into the README"


def test_every_simulator_field_has_a_docstring():
    docs = field_docs(LiveStreamConfig)
    missing = [name for name in LiveStreamConfig.__dataclass_fields__ if not docs.get(name)]
    assert not missing
