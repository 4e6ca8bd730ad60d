"""Stage reuse: mge-train reuse=true returns a finished run of the same config without training, refuses another."""

import json

import pytest

import mge.cli.train as train_cli
from mge.errors import ConfigError
from tests.helpers import compose_config
from tests.runs.conftest import SHORT_TRAIN, train_run

CONFIG = [*SHORT_TRAIN, "callbacks=none"]


def test_a_finished_training_of_the_same_config_is_reused_not_retrained(tmp_path, monkeypatch):
    out = train_run(tmp_path / "run", [*CONFIG[len(SHORT_TRAIN) :], "reuse=true"])
    recorded = json.loads((out / "metrics.json").read_text())

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(train_cli, "train_seed", no_training)
    again = train_cli.train(compose_config("train", [*CONFIG, "reuse=true"], out))
    assert again.to_dict() == recorded
    # the switch is not part of the config hash: the same run made without it is reused too
    assert train_cli.train_settings(compose_config("train", CONFIG, out)).config_hash == recorded["config_hash"]
    with pytest.raises(ConfigError, match="holds a finished run of another config"):
        train_cli.train(compose_config("train", [*CONFIG, "reuse=true", "seed=5"], out))
