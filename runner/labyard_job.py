"""labyard_job: the in-job helper for Labyard (and MLSteam-style) training jobs.

A single file with no dependencies beyond the standard library (PyYAML is used when
installed). It needs no platform: a job's program can read its parameters and report
metrics and progress the same way whether it runs under Labyard, in plain Docker or on a
laptop.

    from labyard_job import get_value, log_metrics, log_progress

    lr = float(get_value("lr", 0.01))                  # from this job's mlsteam.yml
    log_metrics("Train", step=10, loss=0.818, acc=0.95)
    # -> Train step=10 loss=0.818 acc=0.95
    log_progress(epoch=(3, 10), step=(120, 773))
    # -> Progress epoch=3/10 step=120/773

`mlsteam.yml` is looked up in `$MLSTEAM_LAB_DIR`, then `$HOME/lab/`, then the current
directory. In a job's copy each param has one value; if a value is still a list, the first
element is used (as MLSteam's `stparams.get_value` does).
"""

from __future__ import annotations

import math
import numbers
import os
import re
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "GROUPS",
    "X_AXES",
    "find_config",
    "get_value",
    "load_params",
    "log_metrics",
    "log_progress",
]

GROUPS = ("Train", "Validation", "Test")
X_AXES = ("step", "epoch", "iter")
CONFIG_NAME = "mlsteam.yml"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_cache: dict[str, Any] = {}


# --------------------------------------------------------------------------- params


def find_config() -> Path | None:
    """Return the mlsteam.yml this job should read, or None if there is none."""
    candidates: list[Path] = []
    lab_dir = os.environ.get("MLSTEAM_LAB_DIR")
    if lab_dir:
        candidates.append(Path(lab_dir) / CONFIG_NAME)
    home = os.environ.get("HOME")
    if home:
        candidates.append(Path(home) / "lab" / CONFIG_NAME)
    candidates.append(Path.cwd() / CONFIG_NAME)
    for path in candidates:
        if path.is_file():
            return path
    return None


def load_params(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Return the `params` mapping of mlsteam.yml ({} when there is no file or no params)."""
    config = Path(path) if path is not None else find_config()
    if config is None:
        return {}
    key = str(config.resolve())
    stat = config.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(key)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    text = config.read_text(encoding="utf-8")
    params = _parse_params(text)
    _cache[key] = (stamp, params)
    return dict(params)


def get_value(name: str, default: Any = None) -> Any:
    """This job's value of param `name` (first element if it is a list), else `default`."""
    params = load_params()
    if name not in params:
        return default
    value = params[name]
    if isinstance(value, (list, tuple)):
        return value[0] if value else default
    return default if value is None else value


def _parse_params(text: str) -> dict[str, Any]:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return _fallback_params(text)
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("mlsteam.yml: the top level must be a mapping")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("mlsteam.yml: 'params' must be a mapping")
    return {str(k): v for k, v in params.items()}


def _fallback_params(text: str) -> dict[str, Any]:
    """Parse the flat `params:` mapping of mlsteam.yml without PyYAML.

    Handles what a job's copy holds: `name: scalar`, `name: [a, b]` and block lists
    (`name:` then `- a` lines). Other top-level keys are skipped.
    """
    params: dict[str, Any] = {}
    in_params = False
    indent: int | None = None
    pending: str | None = None
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if depth == 0:
            in_params = body.startswith("params:")
            indent, pending = None, None
            rest = body[len("params:") :].strip() if in_params else ""
            if in_params and rest.startswith("{"):
                params.update(_flow_mapping(rest))
                in_params = False
            continue
        if not in_params:
            continue
        if indent is None:
            indent = depth
        if body.startswith("- ") or body == "-":
            if pending is not None:
                if not isinstance(params.get(pending), list):
                    params[pending] = []
                params[pending].append(_scalar(body[1:].strip()))
            continue
        if depth != indent or ":" not in body:
            continue
        key, _, value = body.partition(":")
        key, value = _scalar_str(key.strip()), value.strip()
        if value == "":
            params[key] = None
            pending = key
            continue
        pending = None
        params[key] = _flow_list(value) if value.startswith("[") else _scalar(value)
    return params


def _strip_comment(line: str) -> str:
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _split_flow(inner: str) -> list[str]:
    """Split the inside of `[...]` / `{...}` on top-level commas."""
    items: list[str] = []
    buf, quote, depth = "", None, 0
    for ch in inner:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(buf.strip())
            buf = ""
            continue
        buf += ch
    if buf.strip():
        items.append(buf.strip())
    return items


def _flow_list(value: str) -> list[Any]:
    inner = value.strip()
    if not inner.endswith("]"):
        raise ValueError(f"mlsteam.yml: unterminated list: {value!r}")
    return [_scalar(item) for item in _split_flow(inner[1:-1])]


def _flow_mapping(value: str) -> dict[str, Any]:
    inner = value.strip()
    if not inner.endswith("}"):
        raise ValueError(f"mlsteam.yml: unterminated mapping: {value!r}")
    out: dict[str, Any] = {}
    for item in _split_flow(inner[1:-1]):
        key, _, val = item.partition(":")
        val = val.strip()
        out[_scalar_str(key.strip())] = _flow_list(val) if val.startswith("[") else _scalar(val)
    return out


def _scalar_str(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _scalar(token: str) -> Any:
    """YAML 1.1-ish scalar typing, enough for params: null, bool, int, float, string."""
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    low = token.lower()
    if low in ("", "~", "null"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if re.fullmatch(r"[-+]?\d+", token):
        return int(token)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", token):
        return float(token)
    if low in (".inf", "+.inf"):
        return math.inf
    if low == "-.inf":
        return -math.inf
    if low == ".nan":
        return math.nan
    return token


# --------------------------------------------------------------------------- reporting


def _format_number(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        # numpy / torch scalars are numbers.Real or expose .item()
        item = getattr(value, "item", None)
        if callable(item) and not isinstance(value, bool):
            value = item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name}={value!r} is not a number")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name}={number} is not finite")
    text = repr(number)
    return text if len(text) <= 10 else f"{number:.7g}"


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid metric name {name!r}")


def _emit(line: str, stream: TextIO | None) -> None:
    out = stream if stream is not None else sys.stdout
    out.write(line + "\n")
    out.flush()


def log_metrics(
    group: str,
    *,
    step: int | None = None,
    epoch: int | None = None,
    iter: int | None = None,  # MLSteam's name for the axis
    stream: TextIO | None = None,
    **values: Any,
) -> str:
    """Print one metrics line, e.g. `Train step=10 loss=0.818 acc=0.95`, and return it.

    `group` is Train, Validation or Test; at least one value is required; every value
    must be a finite real number.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, not {group!r}")
    if not values:
        raise ValueError("log_metrics needs at least one metric value")
    parts = [group]
    for axis, position in (("step", step), ("epoch", epoch), ("iter", iter)):
        if position is None:
            continue
        if isinstance(position, bool) or not isinstance(position, numbers.Integral):
            raise ValueError(f"{axis}={position!r} must be an integer")
        parts.append(f"{axis}={int(position)}")
    for name, value in values.items():
        _check_name(name)
        if name in X_AXES:
            raise ValueError(f"{name!r} is an x-axis, not a metric")
        parts.append(f"{name}={_format_number(name, value)}")
    line = " ".join(parts)
    _emit(line, stream)
    return line


def log_progress(*, stream: TextIO | None = None, **counters: tuple[int, int]) -> str:
    """Print a progress line, e.g. `Progress epoch=3/10 step=120/773`, and return it.

    Each counter is (current, total) with 0 <= current <= total and total > 0, outermost
    first. Every counter but the last names the unit that is running, counted from 1 (epoch 3
    of 10 runs); the last counts units done inside it (120 of this epoch's 773 steps, not the
    global step). The platform reads the line above as ((3 - 1) + 120/773) / 10 done.
    """
    if not counters:
        raise ValueError("log_progress needs at least one counter, e.g. epoch=(3, 10)")
    parts = ["Progress"]
    for name, pair in counters.items():
        _check_name(name)
        try:
            done, total = pair
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a (done, total) pair, not {pair!r}") from None
        for v in (done, total):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ValueError(f"{name}={pair!r}: done and total must be integers")
        if total <= 0 or not 0 <= done <= total:
            raise ValueError(f"{name}={pair!r}: need 0 <= done <= total and total > 0")
        parts.append(f"{name}={int(done)}/{int(total)}")
    line = " ".join(parts)
    _emit(line, stream)
    return line


if __name__ == "__main__":  # `python -m labyard_job NAME` prints a param's value
    if len(sys.argv) != 2:
        sys.exit("usage: python -m labyard_job PARAM_NAME")
    result = get_value(sys.argv[1])
    if result is None:
        sys.exit(1)
    print(result)
