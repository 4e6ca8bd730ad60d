"""The stages as plain functions: typed settings in, typed reports out, no Hydra.

The command-line entry points (``mge/cli``), the benchmarks and the experiments all call these.
"""

from mge.runs.device import resolve_device
from mge.runs.fewshot import FewShotRunReport, FewShotRunSettings, run_fewshot
from mge.runs.generate import GenerateReport, GenerateSettings, generate_pool, seed_datamodule
from mge.runs.independent import independent_pool
from mge.runs.pools import comparison_datamodule, load_pools, pool_data
from mge.runs.timing import TrainingTimeReference, probe_training_time
from mge.runs.train import OptimSettings, TrainReport, TrainSettings, train_seed

__all__ = [
    "FewShotRunReport",
    "FewShotRunSettings",
    "GenerateReport",
    "GenerateSettings",
    "OptimSettings",
    "TrainReport",
    "TrainSettings",
    "TrainingTimeReference",
    "comparison_datamodule",
    "generate_pool",
    "independent_pool",
    "load_pools",
    "pool_data",
    "probe_training_time",
    "resolve_device",
    "run_fewshot",
    "seed_datamodule",
    "train_seed",
]
