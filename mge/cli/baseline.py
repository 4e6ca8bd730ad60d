"""``mge-baseline``: a baseline pool (noise, the noise curve, independent training, snapshots) in the pool format.

Writes ``pool/`` and ``metrics.json`` (members, cost in seconds, pool hash) into the run folder;
see ``conf/baseline.yaml`` and :mod:`mge.runs.baselines`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from mge.cli.config import CONF_DIR, ConfigError, finished_or_run, job, settings_from_config, to_plain, typed
from mge.discriminator import DiscriminatorSettings
from mge.reporting import markdown_table
from mge.runs.baselines import (
    BASELINES,
    Baseline,
    BaselineReport,
    BaselineSettings,
    IndependentSettings,
    NoiseCurveSettings,
    NoiseSettings,
    SnapshotSettings,
    make_baseline,
)

_SETTINGS: dict[str, type[Baseline]] = {
    "noise": NoiseSettings,
    "noise_curve": NoiseCurveSettings,
    "independent": IndependentSettings,
    "snapshot": SnapshotSettings,
}


def _baseline(node: Any) -> Baseline:
    """The typed settings of the ``baseline`` group, picked by its ``name``."""
    values = dict(to_plain(node) or {})
    name = values.pop("name", None)
    if name not in _SETTINGS:
        raise ConfigError(
            f"baseline.name: unknown baseline {name!r}. Valid values are {list(BASELINES)} (baseline=<name>)."
        )
    if name == "noise_curve":
        disc = settings_from_config(DiscriminatorSettings, values.pop("discriminator", {}), "baseline.discriminator")
        return replace(settings_from_config(NoiseCurveSettings, values, "baseline"), discriminator=disc)
    return settings_from_config(_SETTINGS[name], values, "baseline")


def baseline_settings(cfg: DictConfig) -> BaselineSettings:
    """The typed settings of ``cfg``'s baseline stage, each value checked against its config key."""
    baseline = _baseline(cfg.baseline)
    seed_model = typed(cfg, "seed_model", str)
    try:
        return BaselineSettings(
            baseline=baseline,
            seed_model=None if seed_model is None else Path(seed_model),
            seed=typed(cfg, "seed", int),
            pool_dir=Path(typed(cfg, "pool_dir", str)),
            device=typed(cfg, "device", str),
            data_root=typed(cfg, "data_root", str),
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err


def summary_table(metrics: dict[str, Any]) -> str:
    """The table ``mge-baseline`` prints, from its ``metrics.json``."""
    rows = [
        ["baseline (pool kind)", f"{metrics['baseline']} ({metrics['kind']})"],
        ["members", metrics["members"]],
        ["cost in seconds", f"{metrics['cost_seconds']:.1f} ({metrics['cost']['what']})"],
        ["reused a finished pool", metrics["reused"]],
        ["pool hash", metrics["pool_hash"][:16]],
    ]
    if metrics.get("acceptance_rate") is not None:
        rows.insert(2, ["acceptance rate (discriminator)", metrics["acceptance_rate"]])
    if metrics.get("unfilled_slots"):
        rows.insert(2, ["slots left empty (no draw accepted)", len(metrics["unfilled_slots"])])
    return markdown_table(["metric", "value"], rows)


def baseline(cfg: DictConfig) -> BaselineReport:
    """Validate ``cfg`` and run :func:`mge.runs.baselines.make_baseline`."""
    return make_baseline(baseline_settings(cfg))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="baseline")
def main(cfg: DictConfig) -> None:
    with job(cfg):
        metrics = finished_or_run(cfg, lambda: {"baseline": baseline(cfg).to_dict()})
        print(summary_table(metrics["baseline"]))
        print(f"run folder: {cfg.paths.output_dir}")


if __name__ == "__main__":
    main()
