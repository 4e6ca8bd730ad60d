"""Stages keyed by their config: a run folder that already holds a finished run of the same config is reused.

A stage (a seed training, a baseline pool, an evaluation) writes ``metrics.json`` last, with the
hash of the config that decides its result (``config_hash``: no paths, loggers or devices). Run
again into the same folder with reuse on, a stage whose ``metrics.json`` records the same hash is
skipped and its recorded metrics are returned; one that records another hash is refused, never
overwritten. An experiment script that gives every stage a fixed folder can then be rerun after
an interruption, or extended, and only redoes what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mge.errors import ConfigError

METRICS_FILE = "metrics.json"


def finished_run(output_dir: str | Path, config_hash: str) -> dict[str, Any] | None:
    """The metrics of the finished run of this config in ``output_dir``; None if it holds no finished run.

    Raises:
        ConfigError: the folder holds a finished run of another config, or an unreadable ``metrics.json``.
    """
    path = Path(output_dir) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); delete it to rerun that stage.") from err
    recorded = metrics.get("config_hash") if isinstance(metrics, dict) else None
    if recorded != config_hash:
        raise ConfigError(
            f"{Path(output_dir)} holds a finished run of another config (config_hash {recorded!r}, this one "
            f"{config_hash!r}). Give this run another folder, or delete that one to redo it."
        )
    return metrics
