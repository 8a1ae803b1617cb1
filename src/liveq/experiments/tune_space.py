"""The search space of `liveq tune`: a YAML file of dotted run-config keys and ranges.

```yaml
agent.dqn.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}
agent.dqn.gamma: {type: float, low: 0.8, high: 0.99}
agent.dqn.n_step: {type: int, low: 1, high: 5}
agent.dqn.hidden_sizes: {type: categorical, choices: [[64, 64], [128, 128]]}
```
Each top-level key names one setting of the run config (`agent.<name>.<field>` or
`train.<field>`) and says how to draw it: `float` and `int` between `low` and `high`
(both included), on a log scale with `log: true` or on a grid with `step`; `categorical`
from a list of `choices` (numbers, strings, booleans, or lists such as layer widths).
`seed`, `env.*` and `agent.name` are refused: the search itself sets the seed and the
worlds, and a value it draws must mean the same in every world. Every mistake is a
`ConfigError` naming the file, the line and the key; a key the run config does not have,
or a range the config rejects at either end, is refused before any trial runs.

A categorical choice that is a list is stored by Optuna under its JSON text
(`"[64, 64]"`), which `decode` turns back into the list.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from liveq.core.config import ConfigError, resolve_config

KINDS = ("float", "int", "categorical")
FIELDS = {"float": {"type", "low", "high", "log", "step"},
          "int": {"type", "low", "high", "log", "step"},
          "categorical": {"type", "choices"}}
REFUSED = ("seed", "env", "agent.name")


@dataclass(frozen=True)
class Param:
    """One searched setting, with the line of the space file that defined it."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    line: int = 0
    source: str = ""

    def labels(self) -> list[Any]:
        """Categorical choices as Optuna stores them: lists become their JSON text."""
        return [json.dumps(c) if isinstance(c, list) else c for c in self.choices]

    def ends(self) -> list[Any]:
        """The values checked against the run config before the search: the range's ends
        or every choice."""
        if self.kind == "categorical":
            return list(self.choices)
        cast = int if self.kind == "int" else float
        return [cast(self.low), cast(self.high)]

    def as_data(self) -> dict[str, Any]:
        """Plain data (stored with the study, so a resumed search can check its space)."""
        if self.kind == "categorical":
            return {"type": self.kind, "choices": list(self.choices)}
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log,
                "step": self.step}


def _key_lines(text: str, where: str) -> dict[str, int]:
    """Line of each top-level key; a key given twice is an error naming both lines."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{where}: expected a mapping of run-config keys to ranges")
    lines: dict[str, int] = {}
    for key_node, _ in root.value:
        line = key_node.start_mark.line + 1
        if key_node.value in lines:
            raise ConfigError(f"{where}:{line}: {key_node.value}: given twice (first on "
                              f"line {lines[key_node.value]})")
        lines[key_node.value] = line
    return lines


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    return value


def _range(spec: dict[str, Any], kind: str, where: str) -> dict[str, Any]:
    for name in ("low", "high"):
        if name not in spec:
            raise ConfigError(f"{where}: a {kind} range needs '{name}'")
    low, high = (_number(spec[n], where, n) for n in ("low", "high"))
    step = None if spec.get("step") is None else _number(spec["step"], where, "step")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise ConfigError(f"{where}: an int range needs whole numbers, got low {low}, high "
                          f"{high}" + (f", step {step}" if step is not None else ""))
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is above high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    if log and step is not None:
        raise ConfigError(f"{where}: choose log or step, not both")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: step must be positive, got {step}")
    return {"low": low, "high": high, "log": log, "step": step}


def _choices(spec: dict[str, Any], where: str) -> tuple[Any, ...]:
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}: categorical needs a non-empty list 'choices'")
    for choice in choices:
        if isinstance(choice, dict) or choice is None:
            raise ConfigError(f"{where}: a choice must be a number, string, boolean or "
                              f"list, got {choice!r}")
    labels = [json.dumps(c, sort_keys=True) for c in choices]
    if len(set(labels)) < len(labels):
        raise ConfigError(f"{where}: choices repeat a value: {choices}")
    return tuple(choices)


def parse_param(key: Any, spec: Any, source: str, line: int) -> Param:
    """The entry on `line` of the space file `source`; errors name both and the key."""
    where = f"{source}:{line}: {key}"
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: a key must be a dotted run-config key such as "
                          "agent.dqn.lr")
    refused = next((r for r in REFUSED if key == r or key.startswith(r + ".")), None)
    if refused is not None:
        raise ConfigError(f"{where}: {refused} is not searchable: the search sets the seed "
                          "and the worlds itself; search agent.* or train.* keys")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping such as {{type: float, low: 0.001, "
                          f"high: 0.1}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"{where}: type must be one of {list(KINDS)}, got {kind!r}")
    unknown = sorted(set(spec) - FIELDS[kind])
    if unknown:
        raise ConfigError(f"{where}: unknown field '{unknown[0]}' for type {kind}; it takes "
                          f"{sorted(FIELDS[kind])}")
    if kind == "categorical":
        return Param(key=key, kind=kind, choices=_choices(spec, where), line=line,
                     source=source)
    return Param(key=key, kind=kind, line=line, source=source, **_range(spec, kind, where))


def load_space(path: str | Path) -> list[Param]:
    """The parameters of a space file (a path, or the name of one shipped with liveq)."""
    path = resolve_config(path)
    text = path.read_text(encoding="utf-8")
    lines = _key_lines(text, str(path))
    data = yaml.safe_load(text)
    params = [parse_param(key, spec, str(path), lines[key]) for key, spec in data.items()]
    if not params:
        raise ConfigError(f"{path}: the space names no parameter")
    return params


def _lookup(data: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
    """The mapping that holds the last part of dotted `key`, and that part; a missing key
    is a `ConfigError` with the nearest existing name."""
    parts = key.split(".")
    node = data
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            known = sorted(node) if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, known, n=1)
            hint = f" (did you mean '{'.'.join([*parts[:depth], close[0]])}'?)" if close else ""
            raise ConfigError(f"no such key in the run config{hint}")
        if depth < len(parts) - 1:
            node = node[part]
    return node, parts[-1]


def set_key(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of the run-config dict `data` with dotted `key` set to `value`."""
    data = copy.deepcopy(data)
    holder, leaf = _lookup(data, key)
    holder[leaf] = value
    return data


def check_against(params: list[Param], config: dict[str, Any],
                  load: Callable[[dict[str, Any]], Any]) -> None:
    """Refuse parameters the resolved run config `config` cannot take: unknown keys,
    sections rather than settings, a float range on an integer setting, and range ends
    or choices that `load` (the run-config loader) rejects."""
    for p in params:
        where = f"{p.source}:{p.line}: {p.key}"
        try:
            holder, leaf = _lookup(config, p.key)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        current = holder[leaf]
        if isinstance(current, dict):
            raise ConfigError(f"{where}: names a section, not a setting; search one of its "
                              f"keys: {sorted(current)}")
        if p.kind == "float" and isinstance(current, int) and not isinstance(current, bool):
            raise ConfigError(f"{where}: the setting is an integer ({current}); use type: int")
        for value in p.ends():
            try:
                load(set_key(config, p.key, value))
            except ConfigError as exc:
                raise ConfigError(f"{where}: the run config refuses {value!r} ({exc})") from None


def suggest(trial: Any, params: list[Param]) -> dict[str, Any]:
    """Draw every parameter from an Optuna trial; returns {key: value as the config takes
    it}. Ray Tune's OptunaSearch calls this same function as its define-by-run space."""
    values = {}
    for p in params:
        if p.kind == "categorical":
            values[p.key] = trial.suggest_categorical(p.key, p.labels())
        elif p.kind == "int":
            values[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log,
                                              step=int(p.step or 1))
        else:
            values[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log, step=p.step)
    return decode(params, values)


def decode(params: list[Param], stored: dict[str, Any]) -> dict[str, Any]:
    """Values as the run config takes them from values as Optuna stores them."""
    by_key = {p.key: p for p in params}
    out = {}
    for key, value in stored.items():
        p = by_key.get(key)
        if p is not None and p.kind == "categorical" and isinstance(value, str) \
                and value in p.labels() and value not in p.choices:
            value = json.loads(value)
        out[key] = value
    return out
