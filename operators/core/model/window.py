"""The sliding window every back end runs its network through, and its one option: test-time mirroring."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from operators.core.errors import ModelSpecError
from operators.core.model.spec import ModelSpec

#: array dimension of each physical axis in an ``(N, C, Z, Y, X)`` window batch
AXIS_DIMS = {"z": 2, "y": 3, "x": 4}


@dataclass(frozen=True)
class Mirroring:
    """Test-time augmentation: each window's output is the mean over its mirror images (every subset of ``axes``
    flipped, the output flipped back), which makes the result exactly mirror-equivariant along those axes.

    Attributes:
        axes: model-grid axes to mirror, any of ``"x"`` (left-right), ``"y"``, ``"z"``; ``""`` is no mirroring.
        mean: average probabilities (``"prob"``) or logits (``"logit"``).

    Measured on the bundled GTV model (docs/accuracy.md): with all 8 mirror images the BraTS validation DSC fell,
    at 8x the inference time, so the app does not use it; it stays an option for evaluation.
    """

    axes: str = ""
    mean: str = "prob"

    def __post_init__(self) -> None:
        if set(self.axes) - set(AXIS_DIMS) or len(set(self.axes)) != len(self.axes):
            raise ModelSpecError(f"mirroring axes must be distinct letters among x, y, z; found {self.axes!r}")
        if self.mean not in ("prob", "logit"):
            raise ModelSpecError(f"mirroring mean must be 'prob' or 'logit', found {self.mean!r}")

    @property
    def images(self) -> int:
        """Network calls per window."""
        return 2 ** len(self.axes)

    def wrap(self, forward: Callable) -> Callable:
        """``forward`` averaged over the mirror images (returns logits, as ``forward`` does)."""
        import torch

        dims = [AXIS_DIMS[a] for a in self.axes]
        flips = [s for r in range(len(dims) + 1) for s in itertools.combinations(dims, r)]

        def run(x):
            total = None
            for f in flips:
                y = forward(torch.flip(x, f) if f else x).float()
                y = torch.flip(y, f) if f else y
                y = torch.sigmoid(y) if self.mean == "prob" else y
                total = y if total is None else total + y
            total = total / len(flips)
            return torch.logit(total.clamp(1e-6, 1 - 1e-6)) if self.mean == "prob" else total

        return run


def sliding_window(image: np.ndarray, spec: ModelSpec, forward: Callable, *, device="cpu", sw_batch_size: int = 2,
                   mirror: Mirroring | None = None):
    """Gaussian-weighted sliding-window logits over the training patch size, then sigmoid, on the content box.

    Only the box around the image content (:func:`operators.core.steps.preprocess.content_box`, as training crops its
    cases) is inferred; probabilities outside it are 0.

    Args:
        forward: ``(N, C, *patch) torch tensor -> (N, L, *patch) logits``.
        mirror: test-time mirroring of every window (see :class:`Mirroring`), or None.

    Returns:
        ``(L, Z, Y, X)`` float32 probabilities (numpy).
    """
    import torch
    from monai.inferers import sliding_window_inference

    from operators.core.steps.preprocess import content_box

    pre = spec.preprocessing
    if mirror is not None and mirror.axes:
        forward = mirror.wrap(forward)
    box = content_box(image, float(pre.normalisation.outside))
    out = np.zeros((len(spec.labels), *image.shape[1:]), dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(image[(slice(None), *box)], dtype=np.float32))[None].to(device)
    with torch.inference_mode():
        logits = sliding_window_inference(
            x, roi_size=pre.patch_size, sw_batch_size=sw_batch_size, predictor=forward, overlap=pre.overlap,
            mode="gaussian", padding_mode="constant", cval=float(pre.normalisation.outside),
        )  # fmt: skip
        probs = torch.sigmoid(logits.float())[0]
    out[(slice(None), *box)] = probs.cpu().numpy()
    return out
