"""Which features of a class-split LeNet-5 seed transfer to the classes it never saw (docs/fewshot.md).

For one class-split seed (``data.classes=[0,1,2,3,4]``) this measures, with the prototype head on
the shared seeded episodes of :mod:`mge.fewshot`:

- how many units of each feature layer are never active (ReLU output 0 on every image) on the
  train classes' discriminator split and on the held-out classes' test images, and how many
  dimensions the features really use there (participation ratio of their covariance's
  eigenvalues, (sum l)^2 / sum l^2: 1 for one direction, D for an isotropic cloud);
- 5-way 1-shot and 5-shot accuracy of raw pixels, random init (mean of 5 initialisations) and the
  seed, at LeNet-5's C5 layer (120 units) and its penultimate F6 layer (84 units, what the protocol
  uses), each with raw, L2-normalised and centred + L2-normalised features (``mge.fewshot.features``;
  the centre is each model's mean feature on the discriminator split);
- on two episode sources: the discriminator split of the *train* classes (what a default may be
  chosen on), and the held-out classes' test images (what is reported, never chosen on).

Usage: python experiments/fewshot_features.py <class-split seed run folder> [--episodes 600] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor, nn

from mge.fewshot import prototype_head, random_init_params, sample_episodes
from mge.fewshot.features import FEATURES, transform_features
from mge.pool import load_seed
from mge.runs import seed_datamodule

LAYERS = {"C5": -3, "F6": None}  # LeNet-5's features[:end]: C5 after its ReLU (120), F6 after its ReLU (84)


@torch.no_grad()
def layer_features(model: nn.Module, images: Tensor, end: int | None) -> Tensor:
    """``model.features[:end]`` of ``images`` (LeNet-5's feature stack), in batches."""
    features: nn.Module = model.features  # type: ignore[assignment]
    stack = features[:end] if end is not None else features  # type: ignore[index]
    return torch.cat([stack(x) for x in images.split(1000)])


def participation_ratio(features: Tensor) -> float:
    """Effective dimensionality of ``(M, D)`` features: ``(sum l)^2 / sum l^2`` over their covariance's eigenvalues."""
    eigenvalues = torch.linalg.eigvalsh(torch.cov(features.double().T)).clamp(min=0)
    return float(eigenvalues.sum() ** 2 / eigenvalues.square().sum())


def accuracy(features: Tensor, labels: Tensor, k_shot: int, n_episodes: int) -> tuple[float, float]:
    """Mean 5-way ``k_shot`` prototype accuracy and its 95% CI half-width, 15 queries per class, seed 0."""
    ep = sample_episodes(labels, n_way=5, k_shot=k_shot, q_query=15, n_episodes=n_episodes, seed=0)
    log_probs = prototype_head(features[ep.support], features[ep.query].flatten(1, 2))  # (E, N*Q, N)
    per_episode = (log_probs.argmax(-1) == ep.query_labels()).float().mean(-1)
    return float(per_episode.mean()), 1.96 * float(per_episode.std()) / n_episodes**0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", type=Path)
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)

    seed = load_seed(args.seed)
    datamodule = seed_datamodule(seed, None)
    datamodule.setup("fit")
    sources = {
        "train classes (discriminator split)": datamodule.split_tensors("discriminator"),
        "held-out classes (test)": datamodule.held_out_tensors("test"),
    }
    arch = {"num_classes": seed.num_classes, "in_channels": seed.in_channels, "image_size": seed.image_size}
    randoms = random_init_params(seed.arch, **arch, seed=0, n_models=5, **seed.arch_kwargs)
    models: dict[str, list[nn.Module]] = {"seed": [seed.build()], "random init": []}
    for i in range(5):
        model = seed.build_empty()
        model.load_state_dict({k: v[i] for k, v in randoms.items()})
        models["random init"].append(model.eval())

    x_centre, _ = sources["train classes (discriminator split)"]
    rows: list[dict[str, object]] = []
    dead: dict[str, dict[str, dict[str, float]]] = {}
    for source, (images, labels) in sources.items():
        pixels = images.flatten(1)
        for k_shot in (1, 5):
            for norm in FEATURES:
                centre = x_centre.flatten(1).mean(0) if norm == "centred_l2" else None
                acc, ci = accuracy(transform_features(pixels, norm, centre), labels, k_shot, args.episodes)
                rows.append(dict(source=source, k_shot=k_shot, model="pixels", layer="-", norm=norm, acc=acc, ci=ci))
        for name, members in models.items():
            for layer, end in LAYERS.items():
                feats = [layer_features(m, images, end) for m in members]
                centres = [layer_features(m, x_centre, end).mean(0) for m in members]
                active = (feats[0] > 0).any(0)
                dead.setdefault(source, {})[f"{name} {layer}"] = {
                    "units": len(active),
                    "never_active": int((~active).sum()),
                    "participation_ratio": round(participation_ratio(feats[0]), 2),
                }
                for k_shot in (1, 5):
                    for norm in FEATURES:
                        scores = [
                            accuracy(transform_features(f, norm, c if norm == "centred_l2" else None), labels, k_shot,
                                     args.episodes)
                            for f, c in zip(feats, centres, strict=True)
                        ]  # fmt: skip
                        acc = sum(s[0] for s in scores) / len(scores)
                        ci = sum(s[1] for s in scores) / len(scores)
                        rows.append(
                            dict(source=source, k_shot=k_shot, model=name, layer=layer, norm=norm, acc=acc, ci=ci)
                        )
    for row in rows:
        print(
            f"{row['source']:36s} {row['k_shot']}-shot {row['model']:12s} {row['layer']:3s} {row['norm']:11s} "
            f"{100 * row['acc']:6.2f} +- {100 * row['ci']:.2f}"  # type: ignore[operator]
        )
    print(json.dumps(dead, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"seed": str(args.seed), "rows": rows, "dead_units": dead}, indent=1))


if __name__ == "__main__":
    main()
