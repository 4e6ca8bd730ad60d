"""Every config group composes, and the composed values are the ones the docs promise."""

import errno
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from mge.cli.config import CONF_DIR, config_hash
from mge.data import list_datasets
from mge.errors import ConfigError, PoolLockedError
from mge.models import list_models
from tests.helpers import compose_config

GROUPS = Path(CONF_DIR)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (GROUPS / group).glob("*.yaml"))


def test_dataset_and_model_groups_match_the_registries():
    assert options("dataset") == list_datasets()
    assert options("model") == list_models()


@pytest.mark.parametrize("config_name", ["train", "generate", "main"])
@pytest.mark.parametrize("dataset", list_datasets())
def test_every_dataset_composes_with_its_default_model(config_name, dataset, tmp_path):
    overrides = [f"dataset={dataset}"] if config_name != "generate" else []
    if config_name == "generate":
        overrides.append("seed_model=somewhere")
    cfg = compose_config(config_name, overrides, tmp_path)
    if config_name != "generate":
        assert cfg.data.name == dataset
        assert cfg.model.arch in list_models()
        assert cfg.trainer.max_epochs >= 1


@pytest.mark.parametrize("group", ["trainer", "logger", "callbacks", "model"])
def test_every_option_of_a_group_composes(group, tmp_path):
    for option in options(group):
        compose_config("train", [f"{group}={option}"], tmp_path)


def test_a_model_given_on_the_command_line_beats_the_dataset_default(tmp_path):
    cfg = compose_config("train", ["dataset=mnist", "model=mlp"], tmp_path)
    assert cfg.model.arch == "mlp"


def test_an_unknown_dataset_lists_the_available_ones(tmp_path):
    with pytest.raises(ConfigCompositionException, match="digits"):
        compose_config("train", ["dataset=imagenet21k"], tmp_path)


def test_wandb_logger_is_offline_by_default_and_keeps_csv(tmp_path):
    cfg = compose_config("train", ["logger=wandb"], tmp_path)
    assert cfg.logger.wandb.offline is True
    assert "csv" in cfg.logger


def test_config_hash_ignores_paths_and_loggers_but_not_the_method(tmp_path):
    base = config_hash(compose_config("train", [], tmp_path / "a"))
    assert base == config_hash(compose_config("train", ["logger=none", "data.root=/elsewhere"], tmp_path / "b"))
    assert base != config_hash(compose_config("train", ["seed=3"], tmp_path / "c"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConfigError("bad value"), True),
        (FileNotFoundError("missing"), True),
        (PoolLockedError("busy"), True),
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.EROFS, "Read-only file system"), True),
        (PermissionError(errno.EACCES, "Permission denied"), True),
        (RuntimeError("a bug: shape mismatch"), False),
        (KeyError("a bug"), False),
        (OSError(errno.EIO, "I/O error"), False),
    ],
)
def test_expected_failures_become_one_line_and_bugs_keep_their_traceback(error, expected, capsys):
    from mge.cli.config import is_expected, job

    assert is_expected(error) is expected
    cfg = OmegaConf.create({})
    if expected:
        with pytest.raises(SystemExit) as exit_info, job(cfg):
            raise error
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == f"error: {error}\n"
    else:
        with pytest.raises(type(error)), job(cfg):
            raise error
        assert capsys.readouterr().err == ""
