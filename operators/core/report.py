"""Review report: a PNG of the contour over the reference images, and a JSON summary of the run.

Neither holds patient-identifying values: slices are named by index and position along the slice normal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from operators.core.geometry import Volume
from operators.core.product import PRODUCT_NAME, SOFTWARE_VERSION

MAX_PANELS = 8


def tumour_slices(mask: np.ndarray, *, max_panels: int = MAX_PANELS) -> list[int]:
    """Indices along axis 0 of slices to show: spread evenly over those holding the mask (or 3 central ones)."""
    hit = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    if hit.size == 0:
        mid = mask.shape[0] // 2
        return sorted({max(mid - 3, 0), mid, min(mid + 3, mask.shape[0] - 1)})
    if hit.size <= max_panels:
        return hit.tolist()
    return hit[np.round(np.linspace(0, hit.size - 1, max_panels)).astype(int)].tolist()


def render_png(
    path: Path,
    image: Volume,
    mask: Volume,
    *,
    title: str,
    colour: tuple[int, int, int] = (255, 0, 0),
    others: Sequence[tuple[np.ndarray, tuple[int, int, int]]] = (),
) -> list[int]:
    """Draw the mask outline over the image on the slices through the mask.

    Args:
        image: ``(Z, Y, X)`` reference image (T1 post-contrast) on its own grid; slices shown as acquired (row 0 at
            the top, as a DICOM viewer shows them), pixel aspect from the spacing.
        mask: ``(Z, Y, X)`` bool on the same grid.
        others: more ``(Z, Y, X)`` bool masks on the same grid and their colours, outlined too (a reference
            segmentation, the brain mask); the slices shown are those through ``mask`` or the first of these.

    Returns:
        The slice indices shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = mask.array | others[0][0] if others else mask.array
    slices = tumour_slices(shown)
    n = len(slices)
    cols = min(n, 4)
    rows = -(-n // cols)
    sx, sy, _ = image.grid.spacing
    normal = image.grid.direction[:, 2]
    lo, hi = np.percentile(image.array, [1, 99.5])
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.9 * rows), squeeze=False, facecolor="black")
    outlines = [(mask.array, colour), *others]
    for ax in axes.flat:
        ax.axis("off")
    for ax, k in zip(axes.flat, slices):
        ax.imshow(image.array[k], cmap="gray", vmin=lo, vmax=hi, aspect=sy / sx, interpolation="nearest")
        for m, rgb in outlines[::-1]:  # the mask last, on top
            if m[k].any():
                ax.contour(m[k].astype(float), levels=[0.5], colors=[tuple(c / 255 for c in rgb)], linewidths=1.2)
        pos = float(image.grid.index_to_lps([[0, 0, k]])[0] @ normal)
        ax.set_title(f"slice {k + 1}/{image.grid.shape[0]}  ({pos:.1f} mm)", color="white", fontsize=9)
    fig.suptitle(title, color="white", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, facecolor="black")
    plt.close(fig)
    return slices


def write_json(path: Path, report: dict) -> None:
    """Write the run report (adds product name and version)."""
    report = {"product": {"name": PRODUCT_NAME, "software_version": SOFTWARE_VERSION}, **report}
    path.write_text(json.dumps(report, indent=2, default=_default))


def _default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return o.name
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
