"""The DQN ablation runner: variants, paired differences and the table over worlds."""

import math

from liveq.experiments import dqn_ablation
from liveq.experiments.world_family import world_config


def test_every_variant_sets_every_switch_over_the_config():
    base = world_config("default")
    base["agent"]["dqn"].update(n_step=5, dueling=True, reward_head=True,
                                policy_average=0.9, lr=0.002)
    plain = dqn_ablation.variant_config(base, dqn_ablation.VARIANTS["dqn"], 2, 1024)
    s = plain.agent.settings
    assert (s.n_step, s.dueling, s.prioritized) == (1, False, False)
    assert not s.reward_head and s.policy_average == 0
    assert plain.seed == 2 and plain.train.eval_every == 0
    both = dqn_ablation.variant_config(base, dqn_ablation.VARIANTS["all three"], 2, 1024)
    assert (both.agent.settings.n_step, both.agent.settings.prioritized) == (3, True)
    assert both.agent.settings.lr == 0.002 and not both.agent.settings.reward_head
    assert plain.env.kwargs["invalid_action"] == "empty"


def test_paired_difference_is_per_seed():
    entry = dqn_ablation._summary([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])
    assert math.isclose(entry["minus_dqn"]["mean"], 2.0)
    assert entry["minus_dqn"]["ci_low"] < 2.0 < entry["minus_dqn"]["ci_high"]
    assert "minus_dqn" not in dqn_ablation._summary([1.0, 2.0], None)


def test_tiny_ablation_and_its_table_over_worlds(tmp_path, capsys):
    base = world_config("clicks_only")
    base["env"]["n_envs"] = 8
    base["env"]["kwargs"].update(n_streamers=40, n_candidates=8)
    base["agent"]["dqn"].update(learning_starts=32, gradient_steps=1, batch_size=8,
                                hidden_sizes=[8])
    r = dqn_ablation.run_ablation(base, [0, 1], 64, 16, tmp_path, "a ", dqn={"gamma": 0.5})
    assert set(r) == set(dqn_ablation.VARIANTS)
    assert "minus_dqn" in r["all three"] and "minus_dqn" not in r["dqn"]
    lines = dqn_ablation.worlds_table({"a": r, "b": r}).splitlines()
    assert lines[0].startswith("| world | variant | return/session")
    assert len(lines) == 2 + 2 * len(dqn_ablation.VARIANTS)
    assert lines[2].startswith("| a | dqn |") and lines[-1].startswith("| b | all three |")
    assert (tmp_path / "n_step_3" / "seed1" / "checkpoints" / "latest.pt").exists()
    assert "a all three seed 1: return/session" in capsys.readouterr().out
    saved = (tmp_path / "dueling" / "seed0" / "config.yaml").read_text()
    assert "gamma: 0.5" in saved and "dueling: true" in saved
    assert base["agent"]["dqn"]["gamma"] != 0.5  # the caller's dict is left alone
