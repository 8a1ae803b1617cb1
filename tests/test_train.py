"""Training loop, run folder, checkpoints and exact resume."""

import json
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from liveq.core.config import ConfigError
from liveq.core.errors import NonFiniteError
from liveq.train import CheckpointError, load_agent, load_checkpoint, load_run_config, train
from liveq.train.checkpoint import save_checkpoint
from liveq.train.run import read_metrics

FAKE_ID = "fake/Candidates-v0"


class FakeCandidateVecEnv(gym.vector.VectorEnv):
    """Item-conditioned toy: reward = feature 0 of the chosen candidate.

    Each step brings a fresh random candidate set; masked candidates get a high feature 0
    (a policy that ignored the mask would love them) and choosing one raises. An episode
    ends terminated when the chosen candidate's feature 1 exceeds 0.8, else truncated after
    `horizon` steps. NEXT_STEP autoreset, and `get_state`/`set_state` for exact resume.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs=4, n_candidates=5, horizon=8):
        self.num_envs, self.k, self.horizon = num_envs, n_candidates, horizon
        self.single_observation_space = gym.spaces.Dict({
            "viewer": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
            "candidates": gym.spaces.Box(-1.0, 2.0, (n_candidates, 3), np.float32),
            "mask": gym.spaces.MultiBinary(n_candidates),
        })
        self.single_action_space = gym.spaces.Discrete(n_candidates)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.rng = np.random.default_rng(0)
        self.t = np.zeros(num_envs, np.int64)
        self.autoreset = np.zeros(num_envs, bool)

    def _sample(self):
        n, k = self.num_envs, self.k
        mask = self.rng.random((n, k)) < 0.6
        mask[np.arange(n), self.rng.integers(0, k, n)] = True
        candidates = self.rng.uniform(-1, 1, (n, k, 3)).astype(np.float32)
        candidates[..., 0] = np.where(mask, candidates[..., 0], 2.0)
        self.obs = {"viewer": self.rng.uniform(-1, 1, (n, 2)).astype(np.float32),
                    "candidates": candidates, "mask": mask.astype(np.int8)}
        return {key: value.copy() for key, value in self.obs.items()}

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t[:], self.autoreset[:] = 0, False
        return self._sample(), {}

    def step(self, actions):
        rows = np.arange(self.num_envs)
        live = ~self.autoreset
        if not self.obs["mask"][rows, actions][live].all():
            raise ValueError("a masked candidate was recommended")
        chosen = self.obs["candidates"][rows, actions]  # (n_envs, 3)
        rewards = np.where(live, chosen[:, 0], 0.0)
        self.t = np.where(live, self.t + 1, 0)
        terminated = live & (chosen[:, 1] > 0.8)
        truncated = live & ~terminated & (self.t >= self.horizon)
        self.autoreset = terminated | truncated
        return self._sample(), rewards, terminated, truncated, {}

    def get_state(self):
        return {"rng": self.rng.bit_generator.state, "t": self.t.copy(),
                "autoreset": self.autoreset.copy(),
                "obs": {key: value.copy() for key, value in self.obs.items()}}

    def set_state(self, state):
        self.rng.bit_generator.state = state["rng"]
        self.t, self.autoreset = state["t"].copy(), state["autoreset"].copy()
        self.obs = {key: value.copy() for key, value in state["obs"].items()}


def fake_evaluate(policy, n_episodes, seed):
    """Mean reward per step of the policy over `n_episodes` horizons of fresh envs."""
    env = FakeCandidateVecEnv(num_envs=n_episodes)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(env.horizon):
        obs, rewards, *_ = env.step(policy.act(obs).actions)
        total += float(np.mean(rewards))
    return {"return": total / env.horizon}


if FAKE_ID not in gym.registry:
    gym.register(FAKE_ID, entry_point=None,
                 vector_entry_point=f"{__name__}:FakeCandidateVecEnv")


def fake_config(**train_overrides):
    return load_run_config({
        "seed": 3,
        "env": {"id": FAKE_ID, "n_envs": 4, "kwargs": {"horizon": 8}},
        "agent": {"name": "dqn", "dqn": {
            "hidden_sizes": [16, 16], "batch_size": 16, "buffer_size": 300,
            "learning_starts": 40, "train_freq": 4, "gradient_steps": 2,
            "target_update_interval": 10, "epsilon_fraction": 0.5}},
        "train": {"total_env_steps": 400, "eval_every": 100, "eval_episodes": 4,
                  "checkpoint_every": 100, "log_every": 40, "progress": False,
                  **train_overrides},
    })


def weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)["agent"]


def assert_same_tensors(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tensors(a[key], b[key])
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def stable_metrics(run_dir):
    return [{k: v for k, v in r.items() if k != "train/steps_per_s"}
            for r in read_metrics(run_dir)]


def test_same_seed_same_weights(tmp_path):
    first = train(fake_config(), tmp_path / "a", evaluate=fake_evaluate)
    train(fake_config(), tmp_path / "b", evaluate=fake_evaluate)
    assert first["env_steps"] == 400 and first["updates"] > 0
    assert_same_tensors(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert stable_metrics(tmp_path / "a") == stable_metrics(tmp_path / "b")


def test_resume_matches_uninterrupted_run_bitwise(tmp_path):
    train(fake_config(), tmp_path / "full", evaluate=fake_evaluate)

    calls = []

    def crash_at_300(policy, n_episodes, seed):
        calls.append(seed)
        if len(calls) == 3:  # evaluations at 100, 200, then 300: after the checkpoint at 200
            raise KeyboardInterrupt
        return fake_evaluate(policy, n_episodes, seed)

    with pytest.raises(KeyboardInterrupt):
        train(fake_config(), tmp_path / "cut", evaluate=crash_at_300)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "latest.pt")["loop"][
        "env_steps"] == 200
    summary = train(fake_config(), tmp_path / "cut", resume=True, evaluate=fake_evaluate)
    assert summary["env_steps"] == 400
    assert_same_tensors(weights(tmp_path / "full"), weights(tmp_path / "cut"))
    assert stable_metrics(tmp_path / "full") == stable_metrics(tmp_path / "cut")
    meta = json.loads((tmp_path / "cut" / "meta.json").read_text())
    assert meta["resumed_at"][0]["env_steps"] == 200


def test_checkpoint_loads_with_weights_only_and_restores_numpy(tmp_path):
    train(fake_config(total_env_steps=100), tmp_path, evaluate=fake_evaluate)
    raw = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert {"agent", "learning", "loop", "collector", "config"} <= raw.keys()
    torch.load(tmp_path / "checkpoints" / "best.pt", weights_only=True)
    state = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert state["learning"]["replay"]["obs"]["mask"].dtype == np.int8
    assert isinstance(state["collector"]["env"]["t"], np.ndarray)
    assert isinstance(state["agent"]["rng"]["state"]["state"], int)


def test_load_agent_from_best_checkpoint(tmp_path):
    train(fake_config(total_env_steps=200), tmp_path, evaluate=fake_evaluate)
    agent, config = load_agent(tmp_path / "checkpoints" / "best.pt")
    assert config == fake_config(total_env_steps=200)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert_same_tensors(agent.q_net.state_dict(), best["agent"]["q_net"])
    assert "return" in fake_evaluate(agent.greedy_policy(), 4, 0)
    save_checkpoint(tmp_path / "other.pt", {"x": 1})
    with pytest.raises(CheckpointError, match="no .config. part"):
        load_agent(tmp_path / "other.pt")


def test_checkpoint_numpy_round_trip(tmp_path):
    value = {"a": np.arange(3, dtype=np.uint8), "b": [np.float32(1.5), (np.zeros(2, bool),)],
             "t": torch.ones(2), "big": 2**100}
    save_checkpoint(tmp_path / "x.pt", value)
    back = load_checkpoint(tmp_path / "x.pt")
    assert back["a"].dtype == np.uint8 and back["a"].tolist() == [0, 1, 2]
    assert back["b"][0] == 1.5 and back["b"][1][0].dtype == bool
    assert torch.equal(back["t"], torch.ones(2)) and back["big"] == 2**100


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not_a_checkpoint"])
def test_damaged_checkpoint_raises_one_line_error(tmp_path, damage):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, {"x": np.ones(1000)})
    if damage == "garbage":
        path.write_bytes(b"not a torch file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        torch.save({"x": 1}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_checkpoint_and_resume_without_run(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="latest.pt"):
        train(fake_config(), tmp_path / "empty", resume=True, evaluate=fake_evaluate)


def test_resume_refuses_a_different_config(tmp_path):
    train(fake_config(total_env_steps=40), tmp_path, evaluate=fake_evaluate)
    other = fake_config(total_env_steps=40)
    other.seed = 4
    with pytest.raises(ConfigError, match="seed"):
        train(other, tmp_path, resume=True, evaluate=fake_evaluate)


def test_fresh_run_refuses_an_existing_run_folder(tmp_path):
    train(fake_config(total_env_steps=40), tmp_path, evaluate=fake_evaluate)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(fake_config(total_env_steps=40), tmp_path, evaluate=fake_evaluate)


def test_unknown_config_keys_are_named():
    with pytest.raises(ConfigError, match="'train.total_env_step'"):
        load_run_config({"train": {"total_env_step": 5}})
    with pytest.raises(ConfigError, match="'agent.dqn.lrr'"):
        load_run_config({"agent": {"dqn": {"lrr": 0.1}}})
    with pytest.raises(ConfigError, match="unknown agent 'sac'"):
        load_run_config({"agent": {"name": "sac"}})
    with pytest.raises(ConfigError, match="train.eval_episodes"):
        load_run_config({"train": {"eval_episodes": 0}})


def test_run_config_from_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 7\nenv: {id: CartPole-v1, n_envs: 2}\nagent: {dqn: {lr: 0.01}}\n")
    config = load_run_config(path)
    assert config.seed == 7 and config.env.n_envs == 2 and config.agent.dqn.lr == 0.01
    assert config.train.total_env_steps == 100_000


def test_run_folder_contents(tmp_path):
    summary = train(fake_config(total_env_steps=200), tmp_path, evaluate=fake_evaluate)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert load_run_config(saved) == fake_config(total_env_steps=200)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["seed"] == 3 and {"liveq", "torch", "numpy", "gymnasium", "python"} <= set(
        meta["versions"])
    records = read_metrics(tmp_path)
    train_records = [r for r in records if "train/loss" in r]
    eval_records = [r for r in records if "eval/return" in r]
    assert [r["env_steps"] for r in eval_records] == [100, 200]
    assert {"updates", "train/episode_return", "train/epsilon"} <= train_records[-1].keys()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "best.pt").exists()
    assert summary["final_eval"] == {"return": eval_records[-1]["eval/return"]}


def test_early_stopping(tmp_path):
    reached = train(fake_config(target_return=-10.0), tmp_path / "a", evaluate=fake_evaluate)
    assert reached["env_steps"] == 100 and "target" in reached["stop_reason"]

    def flat(policy, n_episodes, seed):
        return {"return": 1.0}

    patient = train(fake_config(early_stopping_patience=2), tmp_path / "b", evaluate=flat)
    assert patient["env_steps"] == 300 and "2 evaluations" in patient["stop_reason"]


def test_dict_env_dqn_learns_to_pick_the_best_candidate(tmp_path):
    config = fake_config(total_env_steps=3000, eval_every=0, eval_episodes=32,
                         checkpoint_every=0, log_every=1000)
    config.agent.dqn.gamma = 0.0  # reward is immediate: the myopic baseline is optimal
    config.agent.dqn.buffer_size = 3000
    config.agent.dqn.lr = 3e-3
    summary = train(config, tmp_path, evaluate=fake_evaluate)
    # feature 0 of a random allowed candidate averages 0 (+-0.05 over 32 x 8 steps);
    # always picking the best of the ~3 allowed averages about 0.5
    assert summary["final_eval"]["return"] > 0.35


def test_cartpole_smoke_and_resume_without_env_state(tmp_path):
    config = load_run_config({
        "env": {"id": "CartPole-v1", "n_envs": 2},
        "agent": {"dqn": {"hidden_sizes": [8], "learning_starts": 20, "batch_size": 8}},
        "train": {"total_env_steps": 60, "eval_every": 0, "eval_episodes": 2,
                  "checkpoint_every": 40, "log_every": 20, "progress": True},
    })
    first = train(config, tmp_path)
    # CartPole pays 1 per step: the evaluator's return must equal its episode length
    assert first["env_steps"] == 60
    assert first["final_eval"]["return"] == first["final_eval"]["length"] >= 8
    config.train.total_env_steps = 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = train(config, tmp_path, resume=True)
    assert resumed["env_steps"] == 100
    assert any("get_state" in str(w.message) for w in caught)


def test_dqn_beats_random_on_cartpole_by_far(tmp_path):
    # a uniformly random CartPole policy lasts about 22 steps; 10k steps of DQN reach
    # about 200-240 over seeds 0-2
    config = load_run_config({
        "seed": 0,
        "env": {"id": "CartPole-v1", "n_envs": 4},
        "agent": {"dqn": {"hidden_sizes": [64, 64], "learning_starts": 500,
                          "target_update_interval": 250, "epsilon_fraction": 0.3,
                          "buffer_size": 20_000}},
        "train": {"total_env_steps": 10_000, "eval_every": 0, "eval_episodes": 20,
                  "checkpoint_every": 0, "log_every": 1_000, "progress": False},
    })
    summary = train(config, tmp_path)
    assert summary["final_eval"]["return"] > 100


@pytest.mark.slow
def test_dqn_solves_cartpole(tmp_path):
    config = load_run_config({
        "seed": 0,
        "env": {"id": "CartPole-v1", "n_envs": 8},
        "agent": {"dqn": CARTPOLE_DQN},
        "train": {"total_env_steps": 100_000, "eval_every": 5_000, "eval_episodes": 10,
                  "target_return": 475.0, "checkpoint_every": 20_000, "log_every": 5_000,
                  "progress": False},
    })
    start = time.perf_counter()
    summary = train(config, tmp_path)
    print(f"CartPole: best return {summary['best_return']} after {summary['env_steps']} "
          f"env steps in {time.perf_counter() - start:.1f} s")
    assert summary["best_return"] >= 475.0


CARTPOLE_DQN = {  # close to the RL Zoo's CartPole-v1 DQN: big rounds of updates, fixed target
    "lr": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1_000,
    "train_freq": 256, "gradient_steps": 128, "target_update_interval": 128,
    "epsilon_fraction": 0.16, "epsilon_end": 0.04, "hidden_sizes": [256, 256],
}


# --- bad input and divergence ---------------------------------------------------------

def test_diverging_training_stops_naming_the_env_step_and_saves_no_nan(tmp_path):
    config = fake_config()
    config.agent.dqn.lr = 1e30  # finite, so the config accepts it; the weights blow up
    with pytest.raises(NonFiniteError, match=r"env step \d+"):
        train(config, tmp_path, evaluate=fake_evaluate)
    for name in ("best.pt", "latest.pt"):
        path = tmp_path / "checkpoints" / name
        if path.exists():
            load_agent(path)  # refuses non-finite weights, so this proves none were saved


def test_loading_refuses_non_finite_weights(tmp_path):
    train(fake_config(total_env_steps=100), tmp_path, evaluate=fake_evaluate)
    path = tmp_path / "checkpoints" / "best.pt"
    state = load_checkpoint(path)
    state["agent"]["q_net"]["head.0.bias"][0] = float("nan")
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match=r"non-finite weights in \['q_net\.head\.0\.bias'"):
        load_agent(path)


def test_checkpoint_without_its_parts_names_the_missing_part(tmp_path):
    train(fake_config(total_env_steps=100), tmp_path, evaluate=fake_evaluate)
    latest = tmp_path / "checkpoints" / "latest.pt"
    state = load_checkpoint(latest)
    del state["learning"]
    save_checkpoint(latest, state)
    with pytest.raises(CheckpointError, match="no 'learning' part"):
        train(fake_config(total_env_steps=200), tmp_path, resume=True, evaluate=fake_evaluate)
    del state["agent"]
    save_checkpoint(tmp_path / "no_agent.pt", state)
    with pytest.raises(CheckpointError, match="no 'agent' part"):
        load_agent(tmp_path / "no_agent.pt")


def test_env_kwargs_for_another_env_name_the_key():
    with pytest.raises(ConfigError, match="env.kwargs.n_streamers: CartPole-v1 takes no "
                       "argument 'n_streamers'"):
        load_run_config({"env": {"id": "CartPole-v1", "kwargs": {"n_streamers": 10}}})
    assert load_run_config({"env": {"id": "CartPole-v1",
                                    "kwargs": {"sutton_barto_reward": True}}})


def test_train_leaves_the_callers_torch_threads_alone(tmp_path):
    before = torch.get_num_threads()
    config = fake_config(total_env_steps=40)
    config.train.torch_threads = before + 1
    train(config, tmp_path, evaluate=fake_evaluate)
    assert torch.get_num_threads() == before


def test_weights_of_other_widths_name_the_tensor_and_both_shapes(tmp_path):
    from liveq.train.loop import build_agent

    train(fake_config(total_env_steps=100), tmp_path, evaluate=fake_evaluate)
    path = tmp_path / "checkpoints" / "best.pt"
    state = load_checkpoint(path)
    wide = fake_config()
    wide.agent.dqn.hidden_sizes = [32, 16]
    env = FakeCandidateVecEnv()
    state["agent"] = build_agent(wide, env.single_observation_space,
                                 env.single_action_space, 0).state_dict()
    save_checkpoint(path, state)  # the stored config still says [16, 16]
    with pytest.raises(CheckpointError, match=r"best\.pt: q_net\.viewer_encoder\.0\.weight: "
                       r"saved shape \(32, 2\), this config builds \(16, 2\)"):
        load_agent(path)
