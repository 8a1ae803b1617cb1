"""Every CLI command on the small config, and the one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from liveq.cli.main import main
from liveq.core.config import shipped_configs

SMALL = shipped_configs()["livestream_small"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "dqn"
    assert main(["train", "--config", str(SMALL), "--out", str(out), "--steps", "800"]) == 0
    return out


def test_train_writes_a_complete_run_folder(trained_run):
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "checkpoints/latest.pt",
                 "checkpoints/best.pt"):
        assert (trained_run / name).is_file(), name
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))
    meta = json.loads((trained_run / "meta.json").read_text())
    assert meta["seed"] == 0 and "torch" in meta["versions"]


def test_resume_continues_to_the_new_budget(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--config", str(SMALL), "--out", str(out), "--steps", "400"]) == 0
    assert main(["train", "--config", str(SMALL), "--out", str(out), "--steps", "800",
                 "--resume"]) == 0
    steps = [json.loads(line)["env_steps"] for line in
             (out / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) >= 800


def test_eval_writes_json_and_csv(trained_run, tmp_path, capsys):
    js, cs = tmp_path / "eval.json", tmp_path / "eval.csv"
    assert main(["eval", str(trained_run), "--episodes", "64", "--json", str(js),
                 "--csv", str(cs)]) == 0
    result = json.loads(js.read_text())["dqn"]
    for metric in ("return", "watch_minutes", "clicks", "ctr", "gifts", "length",
                   "return_rate", "coverage", "cold_start_share"):
        entry = result[metric]
        assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"], metric
    assert cs.read_text().startswith("agent,metric,mean,ci_low,ci_high,n")
    assert "return/session" in capsys.readouterr().out


def test_compare_all_agents(tmp_path):
    js = tmp_path / "compare.json"
    code = main(["compare", "--config", str(SMALL), "--agents",
                 "dqn,myopic,oracle,popular,repeat,random", "--episodes", "64", "--steps",
                 "400", "--out", str(tmp_path / "runs"), "--json", str(js), "--no-progress"])
    assert code == 0
    results = json.loads(js.read_text())
    assert list(results) == ["dqn", "myopic", "oracle", "popular", "repeat", "random"]
    assert results["oracle"]["return"]["mean"] > results["random"]["return"]["mean"]


def write_config(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(SMALL.read_text())
    edit(data)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["train"].update(total_env_step=5), "unknown config key 'train.total_env_step'"),
    (lambda d: d["agent"]["dqn"].update(batch_size=-4), "batch_size must be at least 1"),
    (lambda d: d["env"]["kwargs"].update(n_streamers=-1),
     "env.kwargs.n_streamers must be at least 1"),
    (lambda d: d["env"]["kwargs"].update(n_streamer=10),
     "unknown config key 'env.kwargs.n_streamer'"),
    (lambda d: d["env"].update(n_envs=0), "n_envs must be at least 1"),
])
def test_bad_configs_exit_2_with_one_line(tmp_path, capsys, edit, message):
    path = write_config(tmp_path, edit)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liveq: error:") and message in err and "\n" not in err


def test_missing_and_corrupted_checkpoints_exit_2(trained_run, tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    assert main(["eval", str(broken)]) == 2
    assert "best.pt" in capsys.readouterr().err
    (broken / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    assert main(["eval", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert "best.pt" in err and "\n" not in err


def test_missing_config_file_and_unknown_agent(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.yaml"), "--out", "x"]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["compare", "--config", str(SMALL), "--agents", "dqn,alphago"]) == 2
    assert "alphago" in capsys.readouterr().err


def test_argparse_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["train"])
    assert exc.value.code == 2


@pytest.mark.parametrize("name", ["livestream_small", "livestream_default", "livestream_large"])
def test_shipped_configs_are_valid(name):
    from liveq.sim.livestream import make_config
    from liveq.train import load_run_config

    config = load_run_config(SMALL.parent / f"{name}.yaml")
    world = make_config(None, config.env.kwargs)
    assert config.env.id == "liveq/LiveStream-v0" and world.n_candidates >= 1


def test_eval_refuses_a_config_edited_after_training(trained_run, tmp_path, capsys):
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "checkpoints").mkdir()
    (edited / "checkpoints" / "best.pt").write_bytes(
        (trained_run / "checkpoints" / "best.pt").read_bytes())
    data = yaml.safe_load((trained_run / "config.yaml").read_text())
    data["agent"]["dqn"]["hidden_sizes"] = [32, 32]
    (edited / "config.yaml").write_text(yaml.safe_dump(data))
    assert main(["eval", str(edited), "--episodes", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert "edited after training" in err and "\n" not in err
    assert "agent.dqn.hidden_sizes (saved [64, 64], given [32, 32])" in err


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["env"].update(id="CartPole-v1"),
     "env.kwargs.followed_slots: CartPole-v1 takes no argument 'followed_slots'"),
    (lambda d: d["agent"]["dqn"].update(cql_alpha=0.1),
     "agent.dqn.cql_alpha: dqn has no cql_alpha any more; use agent name cql"),
    (lambda d: d["agent"].update(name="sac"), "agent.name: unknown agent 'sac'"),
])
def test_wrong_env_kwargs_and_agent_sections_exit_2(tmp_path, capsys, edit, message):
    path = write_config(tmp_path, edit)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liveq: error:") and message in err and "\n" not in err


def test_train_and_eval_tabular_q_on_the_chain(tmp_path, capsys):
    config = tmp_path / "chain.yaml"
    config.write_text(yaml.safe_dump({
        "env": {"id": "liveq/Chain-v0", "n_envs": 2, "kwargs": {"n_states": 4}},
        "agent": {"name": "tabular_q", "tabular_q": {"alpha": 0.5, "epsilon_end": 0.3}},
        "train": {"total_env_steps": 2000, "eval_every": 1000, "eval_episodes": 4,
                  "checkpoint_every": 1000, "log_every": 500, "progress": False}}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(out)]) == 0
    # greedy from state 0: 3 moves right, then 17 of the 20 steps pay 1
    assert "best eval return 17.000" in capsys.readouterr().out
    assert main(["eval", str(out), "--episodes", "4"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["run", "17.0", "20.0"]


def test_compare_scores_the_checkpoint_asked_for(tmp_path):
    """`--checkpoint latest` scores each learner's final policy: with the run's best
    checkpoint gone it still works, while the default (best) names the missing file."""
    out = tmp_path / "runs"
    args = ["compare", "--config", str(SMALL), "--agents", "dqn,popular", "--episodes", "64",
            "--steps", "400", "--out", str(out), "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "best.json")]) == 0
    (out / "dqn" / "checkpoints" / "best.pt").unlink()
    assert main([*args, "--checkpoint", "latest", "--json", str(tmp_path / "latest.json")]) == 0
    latest = json.loads((tmp_path / "latest.json").read_text())
    evaluated = tmp_path / "eval.json"
    assert main(["eval", str(out / "dqn"), "--checkpoint", "latest", "--episodes", "64",
                 "--json", str(evaluated)]) == 0
    assert latest["dqn"]["return"] == json.loads(evaluated.read_text())["dqn"]["return"]
    assert main(args) == 2
