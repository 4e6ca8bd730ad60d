"""Progress on stderr, so that stdout holds only results (tables, the run folder) and pipes cleanly."""

from __future__ import annotations

import sys
from contextlib import redirect_stdout

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


class StderrProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, drawn on stderr (Lightning's own writes to stdout)."""

    def init_sanity_tqdm(self) -> Tqdm:
        with redirect_stdout(sys.stderr):  # the bar binds to sys.stdout when it is made
            return super().init_sanity_tqdm()

    def init_train_tqdm(self) -> Tqdm:
        with redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Tqdm:
        with redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()

    def init_test_tqdm(self) -> Tqdm:
        with redirect_stdout(sys.stderr):
            return super().init_test_tqdm()

    def init_predict_tqdm(self) -> Tqdm:
        with redirect_stdout(sys.stderr):
            return super().init_predict_tqdm()
