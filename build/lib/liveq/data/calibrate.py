"""`liveq data calibrate`: fit the LiveStream simulator to an interaction log.

Calibration is indirect inference: simulate, measure the simulated log with the same
statistics as the real one (`liveq.data.stats.log_statistics`), move each fitted setting
toward its statistic's target, repeat. A log shows only what its viewers watched (a stream
nobody watched is invisible, a stream's quiet start and end are cut off), so direct
estimates are biased; matching simulated *observations* to real ones cancels that bias,
since the simulated log is observed the same way.

Each fitted setting is paired with the statistic it moves most (`KNOBS`):

| setting | statistic matched |
|---|---|
| `n_streamers` | streams per day (each streamer goes live at most once a day) |
| `mean_stream_hours` | mean duration of the most-watched quarter of streams (seen whole) |
| `live_day_prob` | share of days a streamer is live between its first and last |
| `new_streamer_rate` | share of each day's streamers not seen before |
| `patience_min/max/cap` (scaled together) | mean session length |
| `return_bias` | sessions per viewer, through `p = 1 - 1 / sessions` |
| simulated `sessions` (concurrent viewers) | viewers watching per step |
| `epsilon` of the popular-now behaviour policy | share of spells on the top-10% streamers |
| `return_after_days` (time a returning viewer stays away) | median inter-visit gap |
| `prime_time_hour` | circular mean start hour of the watched streams |
| `prime_time_share` | concentration R of those start hours (starts from R / exp(-sigma^2/2)) |

An update moves the setting on its scale (log, logit, or as is) by `gain` times the gap
between the target's and the simulation's statistic on theirs. The gains are the inverse
elasticities measured on the default world by changing one setting at a time (4 days,
2000 sessions): e.g. doubling `mean_stream_hours` raised the matched duration 1.85x, so
its gain is 1 / log2(1.85) ~ 1.1 (`return_bias`'s measured 1.8 is damped to 1.2: it
overshot, pushed around by session length); a move is capped at `MAX_STEP`. The top-10% share and
the most-watched streams' duration were chosen over the top-1% share and the plain mean
duration because those swing with the world's seed and with how much of each stream is
watched. Set directly from the log: `step_minutes`, and
`max_session_steps` (at least the 99th percentile of session steps). The behaviour policy is
always popular-now (a trending feed) with fitted exploration. Not fitted: the spread of
prime-time starts (kept at its default: with the share it is hard to tell apart from one
concentration figure) and the repeat ratio (no single field drives it); the final table
shows how far they remain.

Fitting rounds simulate `FIT_DAYS` days against the log's first `FIT_DAYS` days; the final
table compares the log's first `COMPARE_DAYS` days with as many simulated days.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import polars as pl
import yaml

from liveq.core.config import from_dict, to_dict
from liveq.core.report import text_table
from liveq.data.log import InteractionLog, LogError, from_raw
from liveq.data.sanity import require_compact
from liveq.data.stats import STAT_LABELS, log_statistics, sessions, steps_per_day
from liveq.sim.config import LiveStreamConfig

FIT_DAYS = 4.0
COMPARE_DAYS = 7.0
FIT_ROUNDS = 3
POLICY = "popular"
DEFAULT_EPSILON = 0.1
MAX_STEP = 1.0
"""Largest move of a setting per round, on its scale (a trust region against noise)."""
MIN_DAYS = 1.0
"""Shortest log calibrate fits: start hours, live-day shares and daily rates need a day."""
SLOT_ACTIVITY = 0.7
"""Viewers watching per step per simulated session slot, on the default world."""


class Knob(NamedTuple):
    """How one fitted setting follows its statistic."""

    stat: str
    scale: str
    """Scale the setting moves on: log, logit, identity or hours (around the clock)."""
    stat_scale: str
    """Scale of the statistic: log, logit, visits (logit of 1 - 1 / sessions) or hours
    (a circular mean hour: gaps are taken the short way round midnight)."""
    gain: float
    low: float
    high: float


KNOBS = {
    "n_streamers": Knob("streams_per_day", "log", "log", 1.0, 16, 50_000),
    "mean_stream_hours": Knob("stream_hours_top_quarter", "log", "log", 1.1, 0.5, 12.0),
    "live_day_prob": Knob("live_day_share", "logit", "logit", 1.0, 0.02, 0.99),
    "new_streamer_rate": Knob("new_streamer_share", "log", "log", 1.8, 1e-5, 0.05),
    "patience_scale": Knob("session_minutes_mean", "log", "log", 1.2, 0.1, 20.0),
    "return_bias": Knob("sessions_per_user", "identity", "visits", 1.2, -10.0, 10.0),
    "sessions": Knob("viewers_per_step", "log", "log", 1.0, 8, 50_000),
    "epsilon": Knob("top10pct_share", "logit", "logit", -1.2, 0.005, 0.995),
    "return_after_days": Knob("gap_hours_median", "log", "log", 1.0, 0.02, 60.0),
    "prime_time_hour": Knob("start_hour_mean", "hours", "hours", 1.0, 0.0, 24.0),
    "prime_time_share": Knob("start_hour_concentration", "logit", "logit", 1.0, 0.02, 0.98),
}
SIM_ARGUMENTS = ("sessions", "epsilon", "return_after_days")


class Calibration(NamedTuple):
    config: LiveStreamConfig
    settings: dict[str, float]
    """Fitted values of every `KNOBS` entry."""
    log_stats: dict[str, float]
    """Statistics of the log's first `days` days."""
    sim_stats: dict[str, float]
    """Statistics of `days` days simulated with `config` and the fitted arguments."""
    days: float


def _to_scale(x: float, scale: str) -> float:
    if scale == "log":
        return math.log(x)
    if scale == "logit":
        return math.log(x / (1.0 - x))
    return x


def _from_scale(u: float, scale: str) -> float:
    if scale == "log":
        return math.exp(u)
    if scale == "logit":
        return 1.0 / (1.0 + math.exp(-u))
    return u


def _stat_scale(value: float, scale: str) -> float:
    if scale == "visits":
        value, scale = 1.0 - 1.0 / min(max(value, 1.001), 1000.0), "logit"
    clipped = min(max(value, 1e-6), 1 - 1e-6) if scale == "logit" else max(value, 1e-9)
    return _to_scale(clipped, scale)


def update(settings: dict[str, float], target: dict[str, float],
           simulated: dict[str, float]) -> dict[str, float]:
    """One indirect-inference step; a knob whose statistic is NaN on either side stays."""
    out = dict(settings)
    for name, knob in KNOBS.items():
        want, got = target[knob.stat], simulated[knob.stat]
        if math.isnan(want) or math.isnan(got):
            continue
        step = min(max(knob.gain * _gap(want, got, knob.stat_scale), -MAX_STEP), MAX_STEP)
        if knob.scale == "hours":
            out[name] = float((settings[name] + step) % 24.0)
            continue
        moved = _from_scale(_to_scale(settings[name], knob.scale) + step, knob.scale)
        out[name] = float(min(max(moved, knob.low), knob.high))
    return out


def _gap(want: float, got: float, scale: str) -> float:
    """`want - got` on the statistic's scale; hours the short way round the clock."""
    if scale == "hours":
        return (want - got + 12.0) % 24.0 - 12.0
    return _stat_scale(want, scale) - _stat_scale(got, scale)


def prime_time_share(concentration: float, spread_hours: float) -> float:
    """Share of prime-time starters that gives a start-hour concentration R.

    Uniform starts have R = 0 and wrapped-normal ones `exp(-sigma^2 / 2)` (sigma in
    radians of the day), so a mixture's R is the share times the latter.
    """
    sigma = spread_hours * 2.0 * math.pi / 24.0
    return concentration / math.exp(-sigma * sigma / 2.0)


def _or(value: float, default: float) -> float:
    return default if math.isnan(value) else value


def initial_settings(stats: dict[str, float], base: LiveStreamConfig) -> dict[str, float]:
    """Moment estimates where the log gives one directly, defaults elsewhere."""
    live_day = min(max(_or(stats["live_day_share"], base.live_day_prob), 0.02), 0.99)
    settings = {
        "n_streamers": stats["streams_per_day"] / live_day,
        "mean_stream_hours": _or(stats["stream_hours_top_quarter"], base.mean_stream_hours),
        "live_day_prob": live_day,
        "new_streamer_rate": base.new_streamer_rate,
        "patience_scale": 1.0,
        "return_bias": base.return_bias,
        "sessions": _or(stats["viewers_per_step"], 1.0) / SLOT_ACTIVITY,
        "epsilon": DEFAULT_EPSILON,
        "return_after_days": _or(stats["gap_hours_median"], 24.0) / 24.0,
        "prime_time_hour": _or(stats["start_hour_mean"], base.prime_time_hour),
        "prime_time_share": prime_time_share(
            _or(stats["start_hour_concentration"], 0.0), base.prime_time_spread_hours),
    }
    return {k: float(min(max(v, KNOBS[k].low), KNOBS[k].high)) for k, v in settings.items()}


def build_config(settings: dict[str, float], base: LiveStreamConfig) -> LiveStreamConfig:
    """`base` with the fitted fields set (the simulate arguments are not config fields)."""
    k = settings["patience_scale"]
    n_streamers = max(int(round(settings["n_streamers"])), base.n_candidates)
    fields = {"n_streamers": n_streamers,
              "mean_stream_hours": round(settings["mean_stream_hours"], 4),
              "live_day_prob": round(settings["live_day_prob"], 4),
              "new_streamer_rate": round(settings["new_streamer_rate"], 6),
              "patience_min": round(base.patience_min * k, 4),
              "patience_max": round(base.patience_max * k, 4),
              "patience_cap": round(base.patience_cap * k, 4),
              "return_bias": round(settings["return_bias"], 4),
              "prime_time_hour": round(settings["prime_time_hour"], 3),
              "prime_time_share": round(settings["prime_time_share"], 4)}
    return from_dict(LiveStreamConfig, {**to_dict(base), **fields})


def log_window(log: InteractionLog, days: float) -> InteractionLog:
    """The log's first `days` days (from its first step), rows cut at the window's end.

    Ids are re-indexed within the window (statistics need no original ids)."""
    first = int(log.frame["start"].min())
    end = first + int(round(days * steps_per_day(log.step_minutes)))
    frame = log.frame.filter(pl.col("start") < end).with_columns(
        pl.col("stop").clip(upper_bound=end))
    return from_raw(frame, step_minutes=log.step_minutes, source=log.source)


def simulate(config: LiveStreamConfig, settings: dict[str, float], days: float,
             seed: int) -> InteractionLog:
    from liveq.data.synth import simulate_interactions

    return simulate_interactions(config, policy=POLICY, epsilon=settings["epsilon"],
                                 sessions=max(1, int(round(settings["sessions"]))), days=days,
                                 seed=seed, return_after_days=settings["return_after_days"])


def base_config(log: InteractionLog) -> LiveStreamConfig:
    """Defaults with the log's step length and room for its longest sessions."""
    visits = sessions(log)
    p99 = float(np.quantile((visits["stop"] - visits["start"]).to_numpy(), 0.99))
    default = LiveStreamConfig()
    return from_dict(LiveStreamConfig, {
        **to_dict(default), "step_minutes": log.step_minutes,
        "max_session_steps": max(default.max_session_steps, int(math.ceil(p99)))})


def calibrate(log: InteractionLog, seed: int = 0, rounds: int = FIT_ROUNDS,
              fit_days: float = FIT_DAYS, compare_days: float = COMPARE_DAYS) -> Calibration:
    """Fit settings to `log` (see the module docstring) and simulate the result once more."""
    if log.frame.height == 0:
        raise LogError(f"{log.source}: the log has no interactions to calibrate on")
    require_compact(log.frame, steps_per_day(log.step_minutes), log.source)
    span = (log.max_step - int(log.frame["start"].min())) / steps_per_day(log.step_minutes)
    if span < MIN_DAYS:
        raise LogError(f"{log.source}: the log covers {span:.2f} days ({log.frame.height} "
                       f"rows); calibrate needs at least {MIN_DAYS:g} day "
                       f"({math.ceil(MIN_DAYS * steps_per_day(log.step_minutes))} steps of "
                       f"{log.step_minutes:g} min)")
    fit_days, compare_days = min(fit_days, span), min(compare_days, span)
    base = base_config(log)
    target = log_statistics(log_window(log, fit_days))
    settings = initial_settings(log_statistics(log), base)
    fit_seed, final_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    for _ in range(rounds):  # one seed for every round: the rounds differ by settings only
        simulated = log_statistics(simulate(build_config(settings, base), settings, fit_days,
                                            fit_seed))
        settings = update(settings, target, simulated)
    config = build_config(settings, base)
    final = log_statistics(simulate(config, settings, compare_days, final_seed))
    return Calibration(config, settings, log_statistics(log_window(log, compare_days)), final,
                       compare_days)


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def format_table(result: Calibration) -> str:
    """statistic | log | simulated | fitted setting, one row per statistic."""
    fitted_by = {knob.stat: name for name, knob in KNOBS.items()}
    rows = [(STAT_LABELS[key], _number(result.log_stats[key]), _number(result.sim_stats[key]),
             fitted_by.get(key, "")) for key in STAT_LABELS]
    return text_table(("statistic", "log", "simulated", "matched by"), rows, left=(0, 3))


def config_yaml(result: Calibration, source: str, path: str = "fitted.yaml") -> str:
    """The fitted config as YAML, each fitted field commented with its statistic."""
    notes = {"step_minutes": "from the log", "max_session_steps": "99th pct of session steps"}
    notes.update({name: f"fitted to {STAT_LABELS[k.stat]}" for name, k in KNOBS.items()})
    for field in ("patience_min", "patience_max", "patience_cap"):
        notes[field] = notes["patience_scale"]
    lines = []
    for line in yaml.safe_dump(to_dict(result.config), sort_keys=False).splitlines():
        key = line.split(":", 1)[0]
        lines.append(f"{line}  # {notes[key]}" if key in notes and not line.startswith(" ")
                     else line)
    s = result.settings
    header = [f"# LiveStreamConfig fitted by `liveq data calibrate` to {source}.",
              "# Simulate it with the fitted behaviour settings:",
              f"#   liveq data synth --config {path} --policy {POLICY} "
              f"--epsilon {s['epsilon']:.4f} --sessions {int(round(s['sessions']))} "
              f"--return-after-days {s['return_after_days']:.3f}"]
    return "\n".join(header + lines) + "\n"
