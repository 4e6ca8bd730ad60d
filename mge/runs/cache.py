"""Stages run once per configuration: their outputs are kept in folders keyed by what decides them.

A sweep that reproduces a table runs many jobs that share stages: three tables evaluate the same
MGE pools, every job of a seed trains the same seed. Each stage's output folder is
``<cache root>/<stage>/<key>``, where the key is a hash of the stage's inputs (its settings and the
content hashes of what it reads, never paths or timestamps). A folder holding ``done.json`` is a
finished stage: its report is read back instead of running the stage again. A folder without it is
an interrupted stage, which the stage itself resumes (training from ``last.ckpt``, pools from their
last checkpoint), so an interrupted sweep is simply started again. Jobs of a parallel sweep that need
the same stage take turns on its folder's lock: the first computes, the others read it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mge.pool.files import atomic_write_json
from mge.pool.lock import FolderLock

DONE = "done.json"


def stage_key(inputs: Mapping[str, Any]) -> str:
    """A short hash of a stage's inputs (JSON values; key order does not matter)."""
    text = json.dumps(inputs, sort_keys=True, default=str, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class StageCache:
    """Finished stages under ``root/<stage>/<key>``, each with its report in ``done.json``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, stage: str, inputs: Mapping[str, Any]) -> Path:
        """Where the stage with these inputs writes (whether or not it has run)."""
        return self.root / stage / stage_key(inputs)

    def run(
        self, stage: str, inputs: Mapping[str, Any], compute: Callable[[Path], dict[str, Any]]
    ) -> tuple[dict[str, Any], Path, bool]:
        """The stage's report (its metrics): read back if it finished before, else ``compute(folder)``.

        Returns:
            ``(report, folder, reused)``.
        """
        plain = json.loads(json.dumps(dict(inputs), sort_keys=True, default=str))
        folder = self.folder(stage, plain)
        folder.mkdir(parents=True, exist_ok=True)
        done = folder / DONE
        with FolderLock(folder, wait=True):  # a parallel job needing the same stage waits, then reuses it
            if done.is_file():
                record = json.loads(done.read_text())
                if record.get("inputs") == plain:
                    return record["report"], folder, True
            report = compute(folder)
            atomic_write_json({"stage": stage, "inputs": plain, "report": report}, done)
        return report, folder, False
