"""`liveq ab`: a simulated A/B test of two policies over several days of viewer traffic.

Viewers `viewer-0 .. viewer-{n-1}` are split by the service's own sticky rule
(`serving.policy_log.arm_of`: SHA-256 of the id against the arms' cumulative shares).
Each arm gets its own LiveStream world (same config, same seed; one world per arm, not a
shared one) with one slot per viewer: a slot's sessions across days are that viewer's
(when the simulator's viewer does not return, a new one takes the seat, as the platform
would see a new account on that device). Day 0 is a pre-period played by the control
policy in both arms, so every viewer has history; days 1..D are played by the arm's
policy. Per-viewer outcomes over days 1..D are compared with Welch's t-test and a
bootstrap; day-0 return is the CUPED covariate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liveq.core.ab_stats import bootstrap_diff, cuped, sample_size, welch
from liveq.core.config import load_yaml, require, resolve_config
from liveq.core.errors import ConfigError
from liveq.policies.baselines import BASELINES, make_baseline
from liveq.serving.policy_log import arm_of
from liveq.sim.vector import make_vec_env
from liveq.train.config import load_run_config
from liveq.train.restore import load_run_agent

METRICS = ("return", "watch_minutes", "ctr", "return_rate", "steps")


@dataclass(kw_only=True)
class ABConfig:
    """A simulated A/B test."""

    control: str
    """Baseline name or run folder for the control arm."""
    treatment: str
    """Baseline name or run folder for the treatment arm."""
    config: str = "livestream_default"
    """World config (name or YAML path) whose `env` both arms play."""
    viewers: int = 10000
    """Simulated viewers, split between the arms by the sticky hash."""
    days: int = 7
    """Sessions per viewer after the pre-period day (one a day)."""
    share: float = 0.5
    """Share of viewers in the treatment arm."""
    mde: float = 0.02
    """Minimum detectable effect, relative to the control mean of return per viewer."""
    seed: int = 0
    """Seed of both worlds and the bootstrap."""

    def validate(self) -> None:
        require(0.0 < self.share < 1.0, f"--share must be in (0, 1), got {self.share}")
        require(self.days >= 1, f"--days must be at least 1, got {self.days}")
        require(self.viewers >= 4, f"--viewers must be at least 4, got {self.viewers}")
        require(self.mde > 0, f"--mde must be positive, got {self.mde}")


def split(viewers: int, share: float) -> np.ndarray:
    """Whether each viewer id `viewer-i` lands in the treatment arm (sticky hash)."""
    arms = [{"name": "control", "share": 1.0 - share}, {"name": "treatment", "share": share}]
    return np.array([arm_of(f"viewer-{i}", arms)["name"] == "treatment"
                     for i in range(viewers)])


def policy_maker(spec: str, config: str):
    """`make(env)` for a baseline name or a run folder, checked before any play."""
    if spec in BASELINES:
        return lambda env: make_baseline(spec, env, 0)
    run = Path(spec)
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"policy '{spec}' is neither a baseline ({', '.join(sorted(BASELINES))})"
                          f" nor a run folder with a config.yaml")
    run_config = load_run_config(run / "config.yaml")
    return lambda env: load_run_agent(run, "best" if (run / "checkpoints" / "best.pt").exists()
                                      else "latest", run_config, env).greedy_policy()


def play(env, control, arm, days: int, seed: int) -> dict[str, np.ndarray]:
    """Per-viewer sums over days 1..days, plus `pre` (day-0 return under control)."""
    n = env.num_envs
    keys = ("return", "watch_minutes", "clicks", "recommendations", "returned", "sessions")
    total = {k: np.zeros(n) for k in keys}
    running = {k: np.zeros(n) for k in keys[:4]}
    pre, day = np.zeros(n), np.zeros(n, dtype=np.int64)
    obs, _ = env.reset(seed=seed)
    restarting = np.zeros(n, dtype=bool)
    while (day <= days).any():
        on_pre = day == 0
        actions = np.asarray(arm.act(obs).actions)
        if on_pre.any():
            first = np.asarray(control.act(obs).actions)
            actions = np.where(on_pre.reshape((-1,) + (1,) * (actions.ndim - 1)), first, actions)
        obs, reward, terminated, truncated, info = env.step(actions)
        live = ~restarting & (day <= days)
        for key, value in (("return", reward), ("watch_minutes", info["watch_minutes"]),
                           ("clicks", info["clicked"]), ("recommendations", info["recommended"])):
            running[key] += np.where(live, value, 0.0)
        ended = (terminated | truncated) & live
        pre[ended & on_pre] = running["return"][ended & on_pre]
        counted = ended & ~on_pre
        for key in running:
            total[key][counted] += running[key][counted]
            running[key][ended] = 0.0
        total["returned"][counted] += np.asarray(info.get("will_return", np.zeros(n)))[counted]
        total["sessions"][counted] += 1
        day += ended
        restarting = terminated | truncated
    return {**total, "pre": pre}


def outcomes(sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-viewer outcome of each metric (ratios per viewer; 0 where undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ctr = np.nan_to_num(sums["clicks"] / sums["recommendations"])
    return {"return": sums["return"], "steps": sums["recommendations"],
            "watch_minutes": sums["watch_minutes"], "ctr": ctr,
            "return_rate": sums["returned"] / np.maximum(sums["sessions"], 1)}


def run_ab(cfg: ABConfig) -> dict[str, Any]:
    """Play both arms and compare them: per-metric Welch and bootstrap, CUPED, power."""
    cfg.validate()
    makers = {"control": policy_maker(cfg.control, cfg.config),
              "treatment": policy_maker(cfg.treatment, cfg.config)}
    env_cfg = load_yaml(resolve_config(cfg.config)).get("env", {})
    in_treatment = split(cfg.viewers, cfg.share)
    sizes = {"control": int((~in_treatment).sum()), "treatment": int(in_treatment.sum())}
    if min(sizes.values()) < 2:
        raise ConfigError(f"--viewers {cfg.viewers} with --share {cfg.share} leaves an arm "
                          f"with fewer than 2 viewers ({sizes})")
    per_arm = {}
    for arm, size in sizes.items():
        env = make_vec_env(env_cfg.get("id", "liveq/LiveStream-v0"), size, env_cfg.get("kwargs"))
        try:
            per_arm[arm] = play(env, makers["control"](env), makers[arm](env), cfg.days, cfg.seed)
        finally:
            env.close()
    return compare(per_arm, cfg)


def compare(per_arm: dict[str, dict[str, np.ndarray]], cfg: ABConfig) -> dict[str, Any]:
    """The report: per-metric lift, the CUPED-adjusted return and the power check."""
    a, b = outcomes(per_arm["control"]), outcomes(per_arm["treatment"])
    result: dict[str, Any] = {"config": vars(cfg).copy(), "metrics": {}}
    for metric in METRICS:
        entry = welch(a[metric], b[metric])
        entry["bootstrap"] = bootstrap_diff(a[metric], b[metric], seed=cfg.seed)
        result["metrics"][metric] = entry
    y = np.concatenate([a["return"], b["return"]])
    x = np.concatenate([per_arm["control"]["pre"], per_arm["treatment"]["pre"]])
    adjusted, theta, reduction = cuped(y, x)
    n_a = a["return"].size
    result["cuped"] = {**welch(adjusted[:n_a], adjusted[n_a:]), "theta": theta,
                       "variance_reduction": reduction}
    sd = float(np.sqrt((a["return"].var(ddof=1) + b["return"].var(ddof=1)) / 2))
    mde = cfg.mde * abs(float(a["return"].mean()))
    needed = sample_size(sd, mde) if mde > 0 else None
    cuped_needed = sample_size(sd * np.sqrt(max(1 - reduction, 0.0)), mde) if mde > 0 else None
    smallest = min(n_a, b["return"].size)
    result["power"] = {"mde_relative": cfg.mde, "mde_absolute": mde, "sd": sd,
                       "needed_per_arm": needed, "needed_per_arm_cuped": cuped_needed,
                       "smallest_arm": smallest,
                       "underpowered": needed is None or smallest < needed}
    return result


def report_lines(result: dict[str, Any]) -> list[str]:
    """The printed table of `liveq ab`."""
    m = result["metrics"]
    lines = [f"{'metric':<14}{'control':>10}{'treatment':>11}{'lift':>10}"
             f"{'95% CI':>22}{'rel':>9}{'p welch':>11}{'p boot':>9}"]
    for name, e in m.items():
        interval = f"[{e['ci_low']:+.3g}, {e['ci_high']:+.3g}]"
        lines.append(f"{name:<14}{e['control']:>10.4g}{e['treatment']:>11.4g}{e['diff']:>+10.3g}"
                     f"{interval:>22}{e['rel']:>+9.1%}"
                     f"{e['p']:>11.3g}{e['bootstrap']['p']:>9.3g}")
    c, p = result["cuped"], result["power"]
    lines.append(f"CUPED return  lift {c['diff']:+.3g} [{c['ci_low']:+.3g}, {c['ci_high']:+.3g}] "
                 f"p {c['p']:.3g}; variance reduced {c['variance_reduction']:.1%} "
                 f"(theta {c['theta']:.3g}, covariate: day-0 return under control)")
    lines.append(f"viewers       control {m['return']['n_control']}, treatment "
                 f"{m['return']['n_treatment']}; to detect {p['mde_relative']:.1%} of control "
                 f"return ({p['mde_absolute']:.3g}) at alpha 0.05, power 0.8: "
                 f"{p['needed_per_arm']} per arm ({p['needed_per_arm_cuped']} with CUPED)")
    if p["underpowered"]:
        lines.append(f"warning: underpowered: the smallest arm has {p['smallest_arm']} viewers, "
                     f"{p['needed_per_arm']} needed per arm for this effect")
    return lines
