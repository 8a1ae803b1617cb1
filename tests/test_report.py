"""`liveq report`: a real report from two tiny trained seeds, `liveq ope sim` and `liveq ab`
output; it opens offline (no network address, no script), embeds exactly the PNGs written
beside it, and shows the numbers an independent evaluation gives. Then the groups, the
viewer segments, and the one-line errors on bad inputs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from liveq.cli.main import main
from liveq.core.report import write_json
from liveq.eval.online import evaluate
from liveq.experiments.report_eval import segment_of
from liveq.experiments.report_runs import Run, group_runs, learning_curve
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.restore import load_run_agent

EPISODES, SEED = 32, 777
COMPARE = {"popular": {"return": {"mean": 5.25, "ci_low": 5.0, "ci_high": 5.5},
                       "ctr": {"mean": 0.625, "ci_low": 0.6, "ci_high": 0.65}}}


@pytest.fixture(scope="module")
def report(tiny_dqn_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    assert main(["ope", "sim", "--seeds", "1", "--sessions", "32", "--steps", "4",
                 "--bootstrap", "20", "--targets", "oracle,random",
                 "--json", str(root / "ope.json")]) == 0
    assert main(["ab", "--control", "popular", "--treatment", "random", "--config",
                 "livestream_small", "--viewers", "40", "--days", "1",
                 "--json", str(root / "ab.json")]) == 0
    write_json(COMPARE, root / "compare.json")
    out = root / "out" / "report.html"
    (root / "out").mkdir()
    assert main(["report", str(tiny_dqn_runs), str(root / "compare.json"), "--out", str(out),
                 "--episodes", str(EPISODES), "--seed", str(SEED), "--ope",
                 str(root / "ope.json"), "--ab", str(root / "ab.json")]) == 0
    return {"out": out, "html": out.read_text(), "root": root, "runs": tiny_dqn_runs}


def test_report_is_self_contained_and_embeds_the_pngs_beside_it(report):
    html = report["html"]
    assert not re.search(r"https?:", html, re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower()
    files = sorted((report["out"].parent / "report_files").glob("*.png"))
    assert {f.name for f in files} == {"learning_curves.png", "metrics.png", "q_values.png",
                                       "watch_minutes.png", "segments.png", "compare.png",
                                       "ope.png", "ab.png"}
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(embedded) == sorted(base64.b64encode(f.read_bytes()).decode() for f in files)
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)


def _independent_return(run: Path) -> float:
    """The run's best greedy policy on the same sessions through liveq.eval.online."""
    config = load_run_config(run / "config.yaml")
    env = make_vec_env(config.env.id, EPISODES, config.env.kwargs)
    try:
        policy = load_run_agent(run, "best", config, env).greedy_policy()
        return evaluate(lambda _: policy, env, EPISODES, SEED)["return"]["mean"]
    finally:
        env.close()


def test_report_shows_the_numbers_an_independent_evaluation_gives(report):
    html = report["html"]
    seeds = [_independent_return(report["runs"] / f"dqn-s{s}") for s in (0, 1)]
    # both seeds' sessions pooled
    assert f'<td class="text">dqn</td><td>{np.mean(seeds):.3f} [' in html
    assert '<td class="text">popular</td><td>5.250 [5.000, 5.500]</td>' in html  # from compare.json
    ab = json.loads((report["root"] / "ab.json").read_text())["metrics"]["return"]
    assert f"<td>{ab['diff']:+.4g}</td>" in html
    ope = json.loads((report["root"] / "ope.json").read_text())["per_seed"][0]
    assert f"<td>{ope['estimate']:.4f}</td>" in html and f"<td>{ope['truth']:.4f}</td>" in html
    sessions = [int(n) for n in re.findall(r'<td class="text">dqn</td><td class="text">'
                                           r"(?:new|returning|heavy)</td><td>(\d+)</td>", html)]
    assert sum(sessions) == 2 * EPISODES and len(sessions) >= 2


def test_runs_differing_only_by_seed_form_one_group():
    def run(name: str, seed: int, gamma: float) -> Run:
        config = {"seed": seed, "agent": {"name": "dqn", "dqn": {"gamma": gamma}},
                  "train": {"progress": seed == 0}}
        records = [{"env_steps": 10, "eval/return": 1.0 + seed},
                   {"env_steps": 20, "eval/return": 3.0 + seed}]
        return Run(Path(name), config, records)

    groups = group_runs([run("a", 0, 0.9), run("b", 1, 0.9), run("c", 0, 0.5)])
    assert {k: [r.path.name for r in v] for k, v in groups.items()} == {
        "dqn (a)": ["a", "b"], "dqn (c)": ["c"]}
    curve = learning_curve(groups["dqn (a)"])
    assert curve.steps.tolist() == [10, 20] and curve.seeds == 2
    np.testing.assert_allclose(curve.mean, [1.5, 3.5])
    np.testing.assert_allclose([curve.low, curve.high], [[1.0, 3.0], [2.0, 4.0]])


def test_viewer_segments_by_days_active():
    assert segment_of(np.array([0, 1, 4, 5, 9]), heavy_days=5).tolist() == [0, 1, 1, 2, 2]


def test_bad_inputs_are_one_line_errors(report, tmp_path, capsys):
    runs, out = str(report["runs"]), str(report["out"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{\"rows\": []}")
    cases = [
        (["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")],
         "does not exist"),
        (["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")],
         "is not a run folder"),
        (["report", runs, "--out", out], "already exists; pass --force"),
        (["report", runs, "--out", str(tmp_path / "no" / "r.html")], "does not exist"),
        (["report", runs, "--out", str(tmp_path / "r.html"), "--ope",
          str(tmp_path / "bad.json")], "no rows with an estimate beside the truth"),
        (["report", runs, "--out", str(tmp_path / "r.html"), "--ab",
          str(tmp_path / "bad.json")], "not the JSON of `liveq ab --json`"),
        (["report", runs, "--out", str(tmp_path / "r.html"), "--db", "sqlite:///x.db"],
         "--db: not an option"),
        (["report", runs], "--out: give the HTML file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("liveq: error:") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r.html").exists()


def test_runs_off_the_livestream_world_get_their_learning_curve_only(tmp_path):
    config = tmp_path / "chain.yaml"
    config.write_text(yaml.safe_dump({
        "env": {"id": "liveq/Chain-v0", "n_envs": 2, "kwargs": {"n_states": 4}},
        "agent": {"name": "tabular_q", "tabular_q": {"alpha": 0.5, "epsilon_end": 0.3}},
        "train": {"total_env_steps": 1000, "eval_every": 500, "eval_episodes": 4,
                  "checkpoint_every": 1000, "log_every": 500, "progress": False}}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "chain")]) == 0
    out = tmp_path / "chain.html"
    assert main(["report", str(tmp_path / "chain"), "--out", str(out)]) == 0
    html = out.read_text()
    assert "Runs and learning curves" in html and "No run plays the LiveStream" in html
    assert "Online metrics" not in html
    assert [p.name for p in (tmp_path / "chain_files").iterdir()] == ["learning_curves.png"]
