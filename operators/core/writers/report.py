"""Review report: a PNG of the contour over the reference images, and a JSON summary of the run.

Neither holds patient-identifying values: slices are named by index and position along the slice normal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from operators.core.case import Contours
from operators.core.geometry import Volume
from operators.core.labels import structure
from operators.core.product import PRODUCT_NAME, SOFTWARE_VERSION
from operators.core.record import RunRecord
from operators.core.steps.quality import banner

MAX_PANELS = 8


def tumour_slices(mask: np.ndarray, *, max_panels: int = MAX_PANELS) -> list[int]:
    """Indices along axis 0 of slices to show: the slice where the mask is largest, the slice where each of its other
    connected parts is largest (a far part is the typical false positive), then slices spread evenly over the rest
    that hold the mask (or 3 central ones when it is empty)."""
    hit = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    if hit.size == 0:
        mid = mask.shape[0] // 2
        return sorted({max(mid - 3, 0), mid, min(mid + 3, mask.shape[0] - 1)})
    if hit.size <= max_panels:
        return hit.tolist()
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(labels.ravel())[1:]
    chosen = [int(np.argmax(mask.sum(axis=(1, 2))))]
    for part in np.argsort(-sizes)[: max_panels // 2] + 1:
        k = int(np.argmax((labels == part).sum(axis=(1, 2))))
        if k not in chosen:
            chosen.append(k)
    rest = [int(k) for k in hit if k not in chosen]
    spare = max_panels - len(chosen)
    if spare > 0 and rest:
        chosen += [rest[i] for i in sorted(set(np.round(np.linspace(0, len(rest) - 1, spare)).astype(int)))]
    return sorted(chosen)


#: banner colours of the review picture's verdict line (ok, review, unreliable)
BANNER = {"ok": (40, 140, 60), "review": (230, 150, 0), "unreliable": (200, 30, 30)}


def render_png(
    path: Path,
    image: Volume,
    mask: Volume,
    *,
    title: str,
    colour: tuple[int, int, int] = (255, 0, 0),
    others: Sequence[tuple[np.ndarray, tuple[int, int, int]]] = (),
    slices_of: Sequence[np.ndarray] | None = None,
    window_region: np.ndarray | None = None,
    banner: tuple[str, str] | None = None,
) -> list[int]:
    """Draw the mask outline over the image on the slices through the mask.

    Args:
        image: ``(Z, Y, X)`` reference image (T1 post-contrast) on its own grid; slices shown as acquired (row 0 at
            the top, as a DICOM viewer shows them), pixel aspect from the spacing.
        mask: ``(Z, Y, X)`` bool on the same grid.
        others: more ``(Z, Y, X)`` bool masks on the same grid and their colours, outlined too (a reference
            segmentation, the brain mask).
        slices_of: the masks whose slices are shown (:func:`tumour_slices` of their union); default ``mask`` and
            the first of ``others`` (the reference in an evaluation).
        window_region: ``(Z, Y, X)`` bool region whose intensities set the grey window (the brain: on skull-stripped
            input the whole volume's percentiles wash the brain out); default the whole volume.
        banner: ``(verdict, text)``: a line above the panels in the verdict's colour (:data:`BANNER`).

    Returns:
        The slice indices shown.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if slices_of is None:
        slices_of = [mask.array] + ([others[0][0]] if others else [])
    shown = np.logical_or.reduce([np.asarray(m, bool) for m in slices_of]) if slices_of else mask.array
    slices = tumour_slices(shown)
    n = len(slices)
    cols = min(n, 4)
    rows = -(-n // cols)
    sx, sy, _ = image.grid.spacing
    normal = image.grid.direction[:, 2]
    window = image.array[window_region] if window_region is not None and window_region.any() else image.array
    lo, hi = np.percentile(window, [0.5, 99.5])
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
    fig.suptitle(title, color="white", fontsize=10, y=0.945 if banner else 0.98)
    fig.tight_layout(rect=(0, 0, 1, 0.93 if banner else 0.97))
    if banner:
        verdict, text = banner
        fig.text(0.5, 0.985, text, ha="center", va="top", fontsize=10, color="white", weight="bold", wrap=True,
                 bbox={"facecolor": tuple(c / 255 for c in BANNER[verdict]), "edgecolor": "none", "pad": 4})
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, facecolor="black")
    plt.close(fig)
    return slices


def review_title(contours: Contours, *, model: dict, channels: Sequence[str], validation: dict | None) -> str:
    """The picture's title: each structure and its volume, the channels used, the model's validation accuracy and
    identity, and that the contour is unapproved."""
    volumes = contours.volumes_cm3()
    label, oars = contours.labels[0], [structure(k).tg263_name for k in contours.labels[1:]]
    accuracy = f", validation DSC {validation['dsc']:.2f} (n = {validation['n']})" if validation else ""
    return (f"{structure(label).tg263_name} {volumes[label]:.1f} cm3" + "".join(f", {n}" for n in oars)
            + f" - from {'+'.join(channels)}{accuracy} - {model['name']} {model['version']}"
            + " - UNAPPROVED, for clinical review")


def render_review(path: Path, contours: Contours, title: str) -> list[int]:
    """The review picture of ``contours`` (GTV in its colour, each organ at risk in its own, the quality banner,
    windowed on the brain): :func:`render_png`'s slices shown."""
    label = contours.labels[0]
    others = [(m.array, structure(k).color_rgb) for m, k in zip(contours.masks[1:], contours.labels[1:])]
    brain = contours.case.brain_mask
    gtv = contours.masks[0].array
    return render_png(path, contours.case.reference, contours.masks[0], title=title,
                      colour=structure(label).color_rgb, others=others,
                      slices_of=[gtv] if gtv.any() else [m for m, _ in others[:1]],
                      window_region=brain.tissue.array if brain is not None else None,
                      banner=banner(contours.quality) if contours.quality is not None else None)


def report_dict(contours: Contours, *, model: dict, channels: Sequence[str], validation: dict | None,
                configuration: dict | None, record: RunRecord, picture: str, slices_shown: Sequence[int]) -> dict:
    """The JSON report of a run: status, model, channel configuration, quality, structures with their volumes, the
    picture, the run record's decisions, stage timings and warnings."""
    models = contours.models or (model,) * len(contours.labels)
    quality, volumes = contours.quality, contours.volumes_cm3()
    return {
        "status": "UNAPPROVED",
        "model": model,
        "configuration": {**(configuration or {}), "channels": list(channels), "validation": validation},
        "quality": quality.to_dict() if quality is not None else None,
        "quality_signals": quality.signals if quality is not None else None,
        "structures": {lab: {"volume_cm3": volumes[lab], "model": mdl} for lab, mdl in zip(contours.labels, models)},
        "review_png": {"file": picture, "slices_shown": [k + 1 for k in slices_shown]},
        "decisions": record.decisions,
        "stages": record.stages,
        "seconds_since_start": round(time.time() - record.started, 3),
        "warnings": record.warnings,
    }


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
