"""The stages as plain functions: typed settings in, typed reports out, no Hydra.

The command-line entry points (``mge/cli``), the benchmarks and the experiments all call these.
"""

from mge.runs.adversarial import AdversarialRunReport, AdversarialRunSettings, attack_pools
from mge.runs.baselines import BaselineReport, BaselineSettings, make_baseline
from mge.runs.device import resolve_device
from mge.runs.evaluate import EvalOptions, EvalReport, EvalSettings, evaluate_pools
from mge.runs.evolve import EvolveReport, EvolveSettings, FromPool, FromSeed, evolve_population
from mge.runs.fewshot import FewShotRunReport, FewShotRunSettings, run_fewshot
from mge.runs.generate import GenerateReport, GenerateSettings, generate_pool, seed_datamodule
from mge.runs.pools import comparison_datamodule, load_pools, pool_data
from mge.runs.timing import TrainingStepTimer, TrainingTimeReference
from mge.runs.train import OptimSettings, TrainReport, TrainSettings, train_seed

__all__ = [
    "AdversarialRunReport",
    "AdversarialRunSettings",
    "BaselineReport",
    "BaselineSettings",
    "EvalOptions",
    "EvalReport",
    "EvalSettings",
    "EvolveReport",
    "EvolveSettings",
    "FewShotRunReport",
    "FewShotRunSettings",
    "FromPool",
    "FromSeed",
    "GenerateReport",
    "GenerateSettings",
    "OptimSettings",
    "TrainReport",
    "TrainSettings",
    "TrainingStepTimer",
    "TrainingTimeReference",
    "attack_pools",
    "comparison_datamodule",
    "evaluate_pools",
    "evolve_population",
    "generate_pool",
    "load_pools",
    "make_baseline",
    "pool_data",
    "resolve_device",
    "run_fewshot",
    "seed_datamodule",
    "train_seed",
]
