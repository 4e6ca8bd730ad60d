"""The command-line side of stage reuse (``reuse=true``): the stage's config hash and its finished run.

See :mod:`mge.runs.reuse`. The ``reuse`` key itself is left out of the hash, so that a run made
without it is reused by the same command with it.
"""

from __future__ import annotations

import copy
from typing import Any

from omegaconf import DictConfig, open_dict

from mge.cli.config import config_hash, typed
from mge.runs.reuse import finished_run

REUSE_KEY = "reuse"


def stage_hash(cfg: DictConfig) -> str:
    """:func:`mge.cli.config.config_hash` of ``cfg`` without the ``reuse`` switch."""
    plain = copy.deepcopy(cfg)
    with open_dict(plain):
        plain.pop(REUSE_KEY, None)
    return config_hash(plain)


def reused_metrics(cfg: DictConfig) -> dict[str, Any] | None:
    """With ``reuse=true``, the metrics of the finished run of this config in the run folder (None: run it)."""
    if not typed(cfg, REUSE_KEY, bool, False):
        return None
    return finished_run(cfg.paths.output_dir, stage_hash(cfg))
