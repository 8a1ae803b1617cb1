"""PPO and A2C through the on-policy loop: GAE by hand, masked distributions, bad input,
learning CartPole, exact resume on the simulator."""

from __future__ import annotations

import json
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from liveq.algos.dqn import DQNAgent, DQNConfig
from liveq.algos.ppo import PPOAgent, PPOConfig
from liveq.buffers.replay import ReplayBatch
from liveq.buffers.rollout import RolloutBuffer, gae
from liveq.core.config import ConfigError, shipped_configs
from liveq.eval.online import make_online_evaluator
from liveq.nets.q_networks import obs_to_tensor
from liveq.sim.vector import make_vec_env
from liveq.train import load_agent, load_run_config, train
from liveq.train.on_policy import OnPolicyLearning

SMALL_WORLD = {"n_streamers": 200, "n_candidates": 8, "followed_slots": 2, "trending_slots": 2}
# close to the RL Zoo's CartPole-v1 PPO: short rollouts, one big batch, many epochs
CARTPOLE_PPO = {"n_steps": 32, "n_minibatches": 1, "n_epochs": 20, "lr": 1e-3,
                "gae_lambda": 0.8, "gamma": 0.98, "entropy_coef": 0.0}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny forward passes: on a busy machine extra threads only add contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- GAE by hand ------------------------------------------------------------------------

def two_env_rollout():
    """Env 0: truncated at t=1 (bootstraps from V(row 2), its final observation), autoreset
    row at t=2. Env 1: terminated at t=1 (no bootstrap), autoreset row at t=2."""
    values = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    rewards = np.array([[1.0, 0.0], [1.0, 2.0], [0.0, 0.0], [1.0, 0.0]])
    terminated = np.array([[False, False], [False, True], [False, False], [False, False]])
    truncated = np.array([[False, False], [True, False], [False, False], [False, False]])
    valid = np.array([[True, True], [True, True], [False, False], [True, True]])
    return values, np.array([5.0, 1.0]), rewards, terminated, truncated, valid


def test_gae_matches_a_hand_computation_with_terminated_and_truncated():
    values, last, rewards, terminated, truncated, valid = two_env_rollout()
    advantages, returns = gae(rewards, values, last, terminated, truncated, valid, 0.5, 0.5)
    # env 0: A3 = 1 + .5*5 - 4; A1 = 1 + .5*3 - 2 (truncated: bootstrap, no carry);
    #        A0 = (1 + .5*2 - 1) + .25*A1
    # env 1: A3 = .5*1 - 1; A1 = 2 - 1 (terminated: no bootstrap); A0 = (.5 - 1) + .25*A1
    expected = np.array([[1.125, -0.25], [0.5, 1.0], [0.0, 0.0], [-0.5, -0.5]])
    np.testing.assert_allclose(advantages, expected)
    np.testing.assert_allclose(returns, expected + values)


def test_rollout_buffer_keeps_only_the_valid_rows_in_order():
    values, last, rewards, terminated, truncated, valid = two_env_rollout()
    buffer = RolloutBuffer()
    for t in range(4):
        buffer.add(np.full((2, 3), t, dtype=np.float32), np.array([t, 10 + t]), rewards[t],
                   terminated[t], truncated[t], valid[t])
    rollout = buffer.finish(values, last, 0.5, 0.5)
    np.testing.assert_array_equal(rollout.actions, [0, 10, 1, 11, 3, 13])
    np.testing.assert_allclose(rollout.advantages, [1.125, -0.25, 0.5, 1.0, -0.5, -0.5])
    assert rollout.obs.shape == (6, 3) and len(buffer) == 0


# --- masked distributions -----------------------------------------------------------------

@pytest.fixture(scope="module")
def livestream():
    env = make_vec_env("liveq/LiveStream-v0", 4, kwargs=SMALL_WORLD)
    obs, _ = env.reset(seed=3)
    mask = obs["mask"].astype(bool).copy()
    mask[1, [0, 2, 5]] = False
    mask[2] = False
    mask[2, 4] = True  # a single allowed candidate
    yield env, {**obs, "mask": mask.astype(obs["mask"].dtype)}, mask
    env.close()


def ppo_for(env, **changes) -> PPOAgent:
    config = PPOConfig(**{"hidden_sizes": [16, 16], **changes})
    return PPOAgent(env.single_observation_space, env.single_action_space, config, seed=5)


def test_masked_candidates_have_probability_exactly_zero_and_rows_sum_to_one(livestream):
    env, obs, mask = livestream
    agent = ppo_for(env)
    probs = agent.behaviour.probabilities(obs)
    assert np.all(probs[~mask] == 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[2, 4] == 1.0
    with torch.no_grad():  # the loss's own distribution: masked entries underflow to 0 too
        train_probs = agent.log_probs(obs_to_tensor(obs)).exp().numpy()
    assert np.all(train_probs[~mask] == 0.0)
    np.testing.assert_allclose(train_probs, probs, atol=1e-6)
    actions = np.stack([agent.act(obs).actions for _ in range(200)])
    assert mask[np.arange(4)[None, :].repeat(200, 0), actions].all()


def test_greedy_policy_is_the_argmax_over_valid_candidates(livestream):
    env, obs, mask = livestream
    agent = ppo_for(env)
    with torch.no_grad():
        logits = agent.actor(obs_to_tensor(obs)).numpy()
    chosen = agent.greedy_policy().act(obs).actions
    np.testing.assert_array_equal(chosen, np.where(mask, logits, -np.inf).argmax(axis=1))


# --- bad input ----------------------------------------------------------------------------

def test_ppo_refuses_slates_naming_the_slate_size():
    env = make_vec_env("liveq/LiveStream-v0", 1, kwargs={**SMALL_WORLD, "slate_size": 3})
    try:
        with pytest.raises(ConfigError, match="slate_size"):
            ppo_for(env)
    finally:
        env.close()


def test_ppo_refuses_a_replay_batch_so_offline_training_fails_clearly(livestream):
    from liveq.train.offline import log_transitions, train_offline

    env, _, _ = livestream
    agent = ppo_for(env)
    logged = log_transitions(env, agent.behaviour, 4, seed=0)
    with pytest.raises(ConfigError, match="on-policy rollouts.*ReplayBatch"):
        train_offline(agent, logged.buffer, 1, seed=0, batch_size=8)
    with pytest.raises(ConfigError, match="on-policy"):
        agent.update(ReplayBatch(*[np.zeros(1)] * 5))


def test_a_replay_learner_forced_onto_the_on_policy_loop_is_refused():
    env = make_vec_env("CartPole-v1", 2)
    dqn = DQNAgent(env.single_observation_space, env.single_action_space, DQNConfig(), 0)
    try:
        with pytest.raises(ConfigError, match="DQNAgent cannot train on the on_policy loop"):
            OnPolicyLearning(dqn, env, np.random.SeedSequence(0), 100)
    finally:
        env.close()


def test_ppo_config_is_validated_naming_the_key():
    with pytest.raises(ConfigError, match="agent.ppo.clip_range"):
        load_run_config({"agent": {"name": "ppo", "ppo": {"clip_range": 1.5}}})
    with pytest.raises(ConfigError, match="agent.a2c.n_steps"):
        load_run_config({"agent": {"name": "a2c", "a2c": {"n_steps": 0}}})


def test_ppo_refuses_a_non_discrete_action_space():
    box = gym.spaces.Box(-1, 1, (3,))
    with pytest.raises(ConfigError, match="Discrete action space"):
        PPOAgent(box, box, PPOConfig(), 0)


# --- the loop and learning ----------------------------------------------------------------

def cartpole_config(name: str, steps: int, **agent):
    return load_run_config({
        "seed": 0, "env": {"id": "CartPole-v1", "n_envs": 8},
        "agent": {"name": name, name: agent},
        "train": {"total_env_steps": steps, "eval_every": 0, "eval_episodes": 10,
                  "checkpoint_every": 0, "log_every": 1_000, "progress": False},
    })


@pytest.mark.parametrize("name", ["ppo", "a2c"])
def test_one_update_per_rollout(tmp_path, name):
    config = cartpole_config(name, 8 * 10 * 3, n_steps=10, n_epochs=2, n_minibatches=3,
                             hidden_sizes=[8])
    summary = train(config, tmp_path)
    assert summary["updates"] == 3 * 2 * 3  # rollouts * epochs * minibatches


def test_ppo_learns_cartpole_far_above_random(tmp_path):
    # a uniformly random policy lasts about 22 steps; seeds 0-2 reach 130-350 here
    summary = train(cartpole_config("ppo", 10_000, **CARTPOLE_PPO), tmp_path)
    assert summary["final_eval"]["return"] > 100


def solved_cartpole(name: str, steps: int, settings: dict, tmp_path) -> float:
    """Best greedy return of `name` on CartPole-v1, stopping early at 475 (solved)."""
    config = cartpole_config(name, steps, **settings)
    config.train.eval_every, config.train.target_return = 5_000, 475.0
    start = time.perf_counter()
    summary = train(config, tmp_path)
    print(f"{name} CartPole: best return {summary['best_return']} after "
          f"{summary['env_steps']} env steps in {time.perf_counter() - start:.1f} s")
    return summary["best_return"]


@pytest.mark.slow
def test_ppo_solves_cartpole(tmp_path):
    assert solved_cartpole("ppo", 100_000, CARTPOLE_PPO, tmp_path) >= 475.0


# A2C (one plain policy-gradient step per short rollout, Adam) on CartPole-v1: with the
# RL Zoo's settings (5-step rollouts, gae_lambda 1, raw advantages, entropy 0, lr 7e-4)
# the greedy return of seeds 0 and 1 peaks at 282 and 410 and falls back to about 100
# within 150,000 steps (seed 2 reaches 487 at 25,000); 8-step rollouts with gae_lambda
# 0.95 and advantages normalised per rollout reach 500 at 35,000 steps on seeds 0-2 and
# at least 475 within 60,000 on 5 of seeds 0-5 (seed 3: 394). The greedy policy still
# swings after its peak (A2C's known instability), hence the early stop at the target,
# as for PPO.
CARTPOLE_A2C = {"n_steps": 8, "gae_lambda": 0.95, "normalize_advantages": True,
                "entropy_coef": 0.0}


@pytest.mark.slow
def test_a2c_solves_cartpole(tmp_path):
    assert solved_cartpole("a2c", 60_000, CARTPOLE_A2C, tmp_path) >= 475.0


def small_livestream(steps: int):
    data = yaml.safe_load(shipped_configs()["livestream_small"].read_text())
    data["agent"] = {"name": "ppo", "ppo": {"n_steps": 7, "hidden_sizes": [16, 16]}}
    data["train"].update(total_env_steps=steps, eval_every=160, checkpoint_every=320,
                         eval_episodes=16, progress=False)
    return load_run_config(data)


def test_resume_mid_rollout_equals_uninterrupted_run(tmp_path):
    config = small_livestream(640)  # 16 envs: checkpoint at 320 falls inside a rollout
    evaluate = make_online_evaluator(config.env.id, config.env.kwargs, 16)
    train(config, tmp_path / "straight", evaluate=evaluate)
    calls = []

    def crash_after_checkpoint(policy, n_episodes, seed):
        calls.append(seed)
        if len(calls) == 3:  # evaluations at 160 and 320 (checkpoint), crash at 480
            raise KeyboardInterrupt
        return evaluate(policy, n_episodes, seed)

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "split", evaluate=crash_after_checkpoint)
    train(config, tmp_path / "split", resume=True, evaluate=evaluate)
    straight = load_agent(tmp_path / "straight" / "checkpoints" / "latest.pt")[0]
    split = load_agent(tmp_path / "split" / "checkpoints" / "latest.pt")[0]
    assert straight.updates == split.updates > 0
    for net in ("actor", "critic"):
        a, b = getattr(straight, net).state_dict(), getattr(split, net).state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{net}.{key}"


def test_compare_trains_and_scores_the_on_policy_learners(tmp_path):
    from liveq.cli.main import main

    js = tmp_path / "compare.json"
    code = main(["compare", "--config", str(shipped_configs()["livestream_small"]),
                 "--agents", "ppo,a2c,popular", "--episodes", "32", "--steps", "480",
                 "--out", str(tmp_path / "runs"), "--json", str(js), "--no-progress"])
    assert code == 0
    results = json.loads(js.read_text())
    assert list(results) == ["ppo", "a2c", "popular"]
    assert all(np.isfinite(r["return"]["mean"]) for r in results.values())
