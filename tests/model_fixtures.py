"""Test-only model bundles whose output is a known function of the input (for plumbing tests)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from operators.core.model.schema import Postprocessing, Preprocessing, app_metadata
from operators.core.model.spec import METADATA_PATH, MODEL_PATH, sha256_of
from operators.core.steps.intensity import Normalisation


class BrightT1c(torch.nn.Module):
    """Logit = 4 * (channel 0 - 1.5): 'GTV' wherever normalised T1 post-contrast exceeds 1.5 SD above its mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * (x[:, :1] - 1.5)


def write_known_function_bundle(root: Path, *, channels=("T1c", "FLAIR"), spacing=(2.0, 2.0, 2.0),
                                patch=(64, 64, 64), min_component_mm3=50.0) -> Path:
    (root / MODEL_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / METADATA_PATH).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(BrightT1c()).save(str(root / MODEL_PATH))
    meta = app_metadata(
        name="known_function_bright_t1c", version="0.0.0", labels=["GTV"], sha256=sha256_of(root / MODEL_PATH),
        preprocessing=Preprocessing(channels=tuple(channels), spacing_mm=tuple(spacing), orientation="LPS",
                                    normalisation=Normalisation(method="zscore", region="nonzero"),
                                    patch_size=tuple(patch)),
        postprocessing=Postprocessing(min_component_mm3=min_component_mm3),
    )
    (root / METADATA_PATH).write_text(json.dumps(meta, indent=1))
    return root
