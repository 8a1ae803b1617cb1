"""Typed configs: `@dataclass(kw_only=True)` classes loaded from YAML or dicts.

Unknown keys are rejected by name, values are checked against the field's type, and
each dataclass may define `validate()` to reject values that make no sense (negative
sizes, probabilities above one). Every error is a `ConfigError` naming the field path.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from liveq.core.errors import ConfigError

T = TypeVar("T")


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _yaml_number(value: Any) -> Any:
    """YAML 1.1 reads `1e-3` and `1e9` (no dot) as strings; read them as the number meant."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def _check_scalar(value: Any, kind: type, path: str) -> Any:
    if kind in (int, float):
        value = _yaml_number(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if kind is int and isinstance(value, float) and math.isfinite(value) \
            and value.is_integer():
        return int(value)  # 1e9 or 1.0e9 for a count
    if kind is bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{path}: expected {kind.__name__}, got {value!r}")
    return value


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{path}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = [_convert(v, item_hint, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        check_finite(value, path)
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if hint is Any:
        return value
    return _check_scalar(value, hint, path)


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build `cls` from a mapping, rejecting unknown keys and mistyped values."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key '{where}'{_suggest(str(key), list(fields))}")
        kwargs[key] = _convert(value, hints[key], where)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as exc:
            raise ConfigError(_under(path, str(exc))) from None
    return obj


def _under(path: str, message: str) -> str:
    """`message` from a nested validation with its key path prefixed by `path`."""
    if not path:
        return message
    unknown = "unknown config key '"
    if message.startswith(unknown):
        return message.replace(unknown, f"{unknown}{path}.", 1)
    return f"{path}.{message}"


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain dict (lists, not tuples) of a config dataclass, ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(obj))


def shipped_configs() -> dict[str, Path]:
    """The configs that ship inside the package, by name (file name without .yaml)."""
    folder = Path(__file__).resolve().parents[1] / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve_config(path: str | Path) -> Path:
    """A config file path: `path` itself if it exists, else the shipped config of that name.

    `livestream_default` and `livestream_default.yaml` both name the shipped config, so
    commands work from an installed wheel as well as from the source tree.
    """
    given = Path(path)
    if given.exists():
        if given.is_dir():
            raise ConfigError(f"{given}: is a directory, expected a YAML config file")
        return given
    shipped = shipped_configs()
    name = given.name.removesuffix(".yaml").removesuffix(".yml")
    if given.parent == Path(".") and name in shipped:
        return shipped[name]
    raise ConfigError(f"config file not found: {given} (shipped configs, usable by name: "
                      f"{', '.join(shipped)})")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (a path or a shipped config's name), with clear errors."""
    path = resolve_config(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (undecodable byte at offset "
                          f"{exc.start}); expected a YAML config") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys")
    return data


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


def check_finite(value: Any, path: str) -> None:
    """Raise `ConfigError` naming the key if a nested mapping or list holds NaN or infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_finite(item, f"{path}[{i}]")


def require(condition: bool, message: str) -> None:
    """Raise `ConfigError(message)` unless `condition`; used inside `validate()`."""
    if not condition:
        raise ConfigError(message)
