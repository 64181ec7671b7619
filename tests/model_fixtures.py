"""Test-only model bundles whose output is a known function of the input (for plumbing tests)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from operators.core.model.spec import METADATA_PATH, MODEL_PATH, sha256_of


class BrightT1c(torch.nn.Module):
    """Logit = 4 * (channel 0 - 1.5): 'GTV' wherever normalised T1 post-contrast exceeds 1.5 SD above its mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * (x[:, :1] - 1.5)


def write_known_function_bundle(root: Path, *, channels=("T1c", "FLAIR"), spacing=(2.0, 2.0, 2.0),
                                patch=(64, 64, 64), min_component_mm3=50.0) -> Path:
    (root / MODEL_PATH).parent.mkdir(parents=True, exist_ok=True)
    (root / METADATA_PATH).parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(BrightT1c()).save(str(root / MODEL_PATH))
    meta = {
        "name": "known_function_bright_t1c",
        "version": "0.0.0",
        "labels": ["GTV"],
        "sha256": sha256_of(root / MODEL_PATH),
        "preprocessing": {
            "channels": list(channels),
            "spacing_mm": list(spacing),
            "orientation": "LPS",
            "normalisation": {"method": "zscore", "region": "nonzero", "clip": 5.0, "outside": 0.0},
            "patch_size": list(patch),
            "overlap": 0.25,
        },
        "postprocessing": {"threshold": 0.5, "min_component_mm3": min_component_mm3, "fill_holes": True},
    }
    (root / METADATA_PATH).write_text(json.dumps(meta, indent=1))
    return root
