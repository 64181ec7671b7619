"""Shared fixtures: where the real data lies (``../shared/data`` relative to the repository root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``GTV_SHARED_DATA`` points elsewhere (a GPU machine gets a one-case copy, see tools/gpu/check.sh).
SHARED_DATA = Path(os.environ.get("GTV_SHARED_DATA")
                   or Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder; tests that need it skip, with the path, where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture(scope="session")
def gtv_model_input(shared_data):
    """The bundled GTV model's spec and its normalised input for a real BraTS validation case (Brats18_CBICA_AQN_1),
    as training and evaluation prepare it (BraTS's own skull stripping as the brain mask)."""
    from operators.core.model.spec import find_model
    from operators.core.steps.preprocess import to_model_input
    from training.brats import find_cases, read_volume, skull_stripped_brain_mask

    spec = find_model(Path(__file__).resolve().parents[1] / "models")
    case = find_cases(shared_data / "brats2018", spec.preprocessing.channels, case_ids=["Brats18_CBICA_AQN_1"])[0]
    channels = [read_volume(p) for p in case.channel_paths]
    image, _ = to_model_input(channels, spec.preprocessing, brain_mask=skull_stripped_brain_mask(channels))
    return spec, image
