"""experiments/codec_compaction.py measures what docs/codec.md reports."""

import json
import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_compaction_fractions_are_valid_and_grow_with_the_threshold(digits_seed_dir, tmp_path):
    out = tmp_path / "compaction.json"
    result = subprocess.run(
        [sys.executable, "experiments/codec_compaction.py", str(digits_seed_dir), "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    tables = json.loads(out.read_text())
    assert set(tables) == {"digits/digits_cnn, all targets", "digits/digits_cnn, conv kernels only"}
    for table in tables.values():
        assert set(table) == {"tensor", "flat", "kernel", "none (raw weights)"}
        for fractions in table.values():
            values = [fractions[t] for t in ("0.9", "0.95", "0.99")]
            assert all(0 < v <= 1 for v in values)
            assert values == sorted(values)
    assert "| kernel" in result.stdout
