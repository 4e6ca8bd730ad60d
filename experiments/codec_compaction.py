"""Which DCT granularity compacts trained weights best? (spec section 2, step 2)

For every seed given, and every granularity, this reports the fraction of coefficients needed to
hold a fraction t of each target tensor's energy (lower = more compact), averaged over tensors
weighted by their size. The most compact granularity is the default in conf/generator/default.yaml.

    python experiments/codec_compaction.py outputs/train/runs/<mnist run> outputs/train/runs/<fmnist run>

Writes JSON to --out (default: outputs/codec_compaction.json) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mge.generator import select_targets
from mge.latent import GRANULARITIES, LatentCodec
from mge.pool import load_seed
from mge.reporting import markdown_table

THRESHOLDS = (0.9, 0.95, 0.99)


def compaction(seed_path: str, conv_only: bool = False) -> dict[str, dict[str, float]]:
    """{granularity: {t: size-weighted fraction of coefficients kept}} for one seed."""
    seed = load_seed(seed_path)
    targets = select_targets(seed.build())
    # a 1-element tensor is trivially compact under every transform: leave out 0-D/1-element tensors
    tensors = [
        seed.state_dict[k].float()
        for k in targets
        if seed.state_dict[k].numel() > 1 and (not conv_only or seed.state_dict[k].dim() == 4)
    ]
    total = sum(t.numel() for t in tensors)
    result = {}
    for granularity in GRANULARITIES:
        codec = LatentCodec(granularity)  # type: ignore[arg-type]
        result[granularity] = {
            str(t): sum(codec.compaction(w, t) * w.numel() for w in tensors) / total for t in THRESHOLDS
        }
    # the identity "transform" as a reference: how compact the raw weights already are
    result["none (raw weights)"] = {
        str(t): sum(_raw_fraction(w, t) * w.numel() for w in tensors) / total for t in THRESHOLDS
    }
    return result


def _raw_fraction(w: torch.Tensor, t: float) -> float:
    from mge.latent import keep_mask

    return keep_mask(w.square(), t).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seeds", nargs="+", help="mge-train run folders or seed .safetensors files")
    parser.add_argument("--out", default="outputs/codec_compaction.json")
    args = parser.parse_args()
    results = {}
    for path in args.seeds:
        seed = load_seed(path)
        name = f"{seed.meta.get('dataset')}/{seed.arch}"
        results[f"{name}, all targets"] = compaction(path)
        results[f"{name}, conv kernels only"] = compaction(path, conv_only=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for name, table in results.items():
        print(f"\n{name}: fraction of coefficients holding t of the energy (lower = more compact)\n")
        rows = [[g, *[table[g][str(t)] for t in THRESHOLDS]] for g in table]
        print(markdown_table(["granularity", *[f"t={t}" for t in THRESHOLDS]], rows))


if __name__ == "__main__":
    main()
