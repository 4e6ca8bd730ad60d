"""From Hydra config nodes to validated, typed settings, and the frame every entry point runs in.

Core code names the field in its messages ("threshold must lie in (0, 1]"); this adapter adds the
config key ("generator.threshold: ..."), so a message always says what to change on the command line.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import logging
import sys
import typing
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mge.errors import ConfigError, MgeError
from mge.pool.files import atomic_write_json

T = TypeVar("T")
log = logging.getLogger("mge")
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")
# keys that change where or how fast a run happens, not what it computes
_UNHASHED = {"paths", "hydra", "logger", "callbacks", "progress", "pool_dir", "data_root", "device", "ckpt_path"}
_UNHASHED_NESTED = {
    "data": {"root", "download", "num_workers", "eval_batch_size"},
    "trainer": {"default_root_dir", "enable_progress_bar", "enable_model_summary", "log_every_n_steps"},
}
# The operating system's failures a user can fix: a read-only folder, a full disk, a path that is a file.
_EXPECTED_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST, errno.ENOTDIR}


def to_plain(node: Any) -> Any:
    """A DictConfig/ListConfig as plain resolved Python values."""
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} must be a list of strings, got {value!r}.")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r} ({type(value).__name__}).")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r} ({type(value).__name__}).")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r} ({type(value).__name__}).")
        return value
    return value


def settings_from_config(cls: type[T], node: Any, key: str) -> T:
    """Build the dataclass ``cls`` from config ``node``, checking key names and value types.

    The dataclass's own ``__post_init__`` checks ranges; its ValueError becomes a
    :class:`ConfigError` prefixed with ``key``.
    """
    if not is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass.")
    values = dict(to_plain(node) or {})
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} under {key}. Valid keys are {valid}.")
    hints = typing.get_type_hints(cls)
    typed = {name: _coerce(hints[name], value, f"{key}.{name}") for name, value in values.items()}
    try:
        return cls(**typed)
    except ValueError as err:
        raise ConfigError(f"{key}.{err}" if _names_field(err, valid) else f"{key}: {err}") from err


def _names_field(err: ValueError, valid: list[str]) -> bool:
    """Does the message start with one of the dataclass's field names (so that ``key.`` reads as its path)?"""
    return any(str(err).startswith(f"{name} ") or str(err).startswith(f"{name}=") for name in valid)


def call_with_config(factory: Callable[..., T], node: Any, key: str, **extra: Any) -> T:
    """Call ``factory(**node, **extra)`` after checking that every key is one it accepts."""
    values = dict(to_plain(node) or {})
    params = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ConfigError(f"Unknown key(s) {unknown} under {key}. Valid keys are {valid}.")
    try:
        return factory(**values, **extra)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {err}") from err


def typed(cfg: DictConfig, key: str, hint: Any, default: Any = None) -> Any:
    """``cfg[key]`` checked to be of type ``hint`` (int, float, bool, str; ``None`` passes when allowed)."""
    value = cfg.get(key, default)
    return None if value is None and default is None else _coerce(hint, value, key)


def require(cfg: DictConfig, key: str, hint: str) -> Any:
    """``cfg[key]``, or a :class:`ConfigError` saying it must be given (Hydra's ``???``)."""
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) is None:
        raise ConfigError(f"{key} is required: {hint}")
    return cfg[key]


def config_hash(cfg: DictConfig) -> str:
    """Short SHA-256 of what decides a run's result (not paths, loggers or devices)."""
    plain = {k: v for k, v in to_plain(cfg).items() if k not in _UNHASHED}
    for group, keys in _UNHASHED_NESTED.items():
        if isinstance(plain.get(group), dict):
            plain[group] = {k: v for k, v in plain[group].items() if k not in keys}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_or_run(cfg: DictConfig, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The job's metrics: read back from its folder if a finished job of the same config left them, else ``run()``.

    A finished job is one whose ``metrics.json`` records the same :func:`config_hash`; re-running a
    sweep into the same folder (``hydra.sweep.dir=...``) therefore only runs the jobs that did not
    finish. ``run`` writes nothing itself; this writes ``metrics.json`` with the hash.
    """
    path = Path(cfg.paths.output_dir) / "metrics.json"
    key = config_hash(cfg)
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:
            stored = {}
        if stored.get("job", {}).get("config_hash") == key:
            print(f"finished before: {path} (delete the run folder to run it again)", file=sys.stderr)
            return stored
    metrics = {"job": {"config_hash": key}, **run()}
    write_metrics(metrics, path.parent)
    return metrics


def write_metrics(metrics: dict[str, Any], output_dir: str | Path) -> Path:
    """``metrics.json`` in the run folder, written atomically (a crash leaves the old file or none).

    Every command writes one key per stage it ran (``train``, ``generate``, ...), so that a column
    path such as ``metrics.generate.test.accuracy.mean`` reads the same from ``mge`` and ``mge-generate``.
    """
    path = Path(output_dir) / "metrics.json"
    atomic_write_json(metrics, path)
    return path


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(sub) for sub in (cfg.get("callbacks") or {}).values()]


def in_multirun() -> bool:
    """Is this job one of a Hydra multirun (where progress bars would interleave)?"""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def is_expected(err: BaseException) -> bool:
    """A failure the user can fix (bad input, missing or refused files, a full or read-only disk), not a bug."""
    if isinstance(err, (MgeError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return True
    return isinstance(err, OSError) and err.errno in _EXPECTED_ERRNOS


# Framework warnings that say nothing about the run: deprecations inside Lightning, hints that
# assume a large dataset. The run's own warnings (mge's logger) still show.
_QUIET_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)",
    r".*does not have many workers",
    r".*smaller than the logging interval",
)


def quiet_frameworks() -> None:
    """Silence the framework warnings listed in ``_QUIET_WARNINGS`` for this process."""
    for message in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


@contextmanager
def job(cfg: DictConfig) -> Iterator[None]:
    """Around every entry point: an expected failure becomes one ``error:`` line and exit code 2 (its
    traceback goes to the run's log file); a bug keeps its traceback. wandb is always closed, so that
    multirun jobs never share a run (LHT #289)."""
    quiet_frameworks()
    try:
        yield
    except Exception as err:
        log.debug("%s: %s", type(err).__name__, err, exc_info=True)  # the run's log file (conf/hydra/default.yaml)
        if not is_expected(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from err
    finally:
        if "wandb" in sys.modules:
            import wandb

            if wandb.run is not None:
                wandb.finish()
