"""A picture of synthetic training samples (one row per seed: axial, coronal, sagittal through the target), for
checking the generator by eye."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from operators.core.errors import ConfigError
from operators.core.geometry import Volume
from training.synth import SynthConfig, generate

logger = logging.getLogger(__name__)


def save_preview(
    path: str | Path,
    label_maps: Sequence[Volume],
    config: SynthConfig | Sequence[SynthConfig],
    seeds: Sequence[int],
    *,
    mode: str | Sequence[str] = "hippocampus",
) -> Path:
    """Write a PNG with one row per seed: axial, coronal and sagittal slices through the target's centre.

    Row ``n`` uses ``label_maps[n % len(label_maps)]``, and ``config``/``mode`` either shared or one per row. The
    target is drawn as a red outline. The PNG is written to a temporary file and moved into place.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(seeds)
    configs = [config] * n if isinstance(config, SynthConfig) else list(config)
    modes = [mode] * n if isinstance(mode, str) else list(mode)
    if len(configs) != n or len(modes) != n or not label_maps:
        raise ConfigError(f"save_preview: need label maps and one config/mode per seed ({n}) or a shared one")
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for row, seed in enumerate(seeds):
        image, target, _ = generate(
            label_maps[row % len(label_maps)], config=configs[row], rng=np.random.default_rng(seed), mode=modes[row]
        )
        k, j, i = (np.argwhere(target).mean(axis=0) if target.any() else np.array(target.shape) / 2).astype(int)
        # Array (k, j, i) = (S, P, L): show axial with anterior up, coronal/sagittal with superior up.
        for ax, img, msk, name in (
            (axes[row, 0], image[k], target[k], "axial"),
            (axes[row, 1], image[:, j, :][::-1], target[:, j, :][::-1], "coronal"),
            (axes[row, 2], image[:, :, i][::-1], target[:, :, i][::-1], "sagittal"),
        ):
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if msk.any():
                ax.contour(msk, levels=[0.5], colors="r", linewidths=0.8)
            ax.set_title(f"seed {seed}, {configs[row].contrast}, {modes[row]}: {name}", fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    logger.info("synthetic preview of %d samples written to %s", n, path)
    return path
