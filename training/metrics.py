"""Overlap and surface-distance metrics in physical units (MONAI's implementations, spacing-aware)."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance


def _onehot(mask: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(mask, dtype=bool))
    return torch.stack([~t, t])[None].float()  # (1, 2, Z, Y, X)


def segmentation_metrics(pred: np.ndarray, ref: np.ndarray, spacing_zyx: tuple[float, float, float]) -> dict:
    """DSC, HD95 (mm) and symmetric ASD (mm) of two ``(Z, Y, X)`` bool masks.

    Args:
        spacing_zyx: voxel spacing along the array axes (Z, Y, X), in mm.

    Returns:
        ``{"dsc", "hd95_mm", "asd_mm", "pred_cm3", "ref_cm3"}``; distances are NaN when either mask is empty.
    """
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    voxel_cm3 = float(np.prod(spacing_zyx)) / 1000.0
    total = pred.sum() + ref.sum()
    dsc = 1.0 if total == 0 else float(2.0 * (pred & ref).sum() / total)
    if pred.any() and ref.any():
        p, r = _onehot(pred), _onehot(ref)
        sp = [float(s) for s in spacing_zyx]
        hd95 = float(compute_hausdorff_distance(p, r, include_background=False, percentile=95, spacing=sp)[0, 0])
        asd = float(compute_average_surface_distance(p, r, include_background=False, symmetric=True, spacing=sp)[0, 0])
    else:
        hd95 = asd = float("nan")
    return {"dsc": dsc, "hd95_mm": hd95, "asd_mm": asd, "pred_cm3": float(pred.sum() * voxel_cm3),
            "ref_cm3": float(ref.sum() * voxel_cm3)}


def summarise(values: list[float]) -> dict:
    """Mean, SD (ddof=1), median, min, max over the finite values, and n."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": float("nan"), "sd": float("nan"), "median": float("nan"), "min": float("nan"),
                "max": float("nan")}
    return {"n": int(v.size), "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def quality_entry(quality) -> dict | None:
    """A quality verdict as an evaluation records it: verdict, flag codes and every signal's value."""
    if quality is None:
        return None
    return {"verdict": quality.verdict, "flags": [f.code for f in quality.flags], "signals": quality.signals}
