"""Model files and their hashes: every file a model loads is checked against the sha256 its metadata records."""

from __future__ import annotations

import hashlib
from pathlib import Path

from operators.core.errors import ModelSpecError

BACKEND_DEEPBET = "deepbet"
#: weight files inside the deepbet package's data folder, by the metadata key holding their sha256
DEEPBET_WEIGHT_FILES = {"model": "models/model.pt", "bbox_model": "models/bbox_model.pt"}


def sha256_of(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def deepbet_weight_files(root: Path, metadata: dict, *, verify: bool = True) -> dict[str, Path]:
    """The deepbet weight files, each checked against its sha256 in the bundle metadata (``verify=False`` for a
    bundle that :func:`operators.core.model.spec.load_model_spec` has verified already). ``root``: the bundle folder,
    for messages; ``metadata``: its parsed metadata."""
    try:
        from deepbet.utils import DATA_PATH
    except ImportError as err:
        raise ModelSpecError(f"model folder {root}: back end {BACKEND_DEEPBET!r} needs the deepbet package "
                             f"({err})") from err
    expected = metadata.get("weights_sha256", {})
    paths = {}
    for key, rel in DEEPBET_WEIGHT_FILES.items():
        path = Path(DATA_PATH) / rel
        if key not in expected:
            raise ModelSpecError(f"model metadata {root}: weights_sha256 has no {key!r} entry")
        if not path.is_file():
            raise ModelSpecError(f"model folder {root}: deepbet weight file {path} is missing")
        actual = sha256_of(path) if verify else expected[key]
        if actual != expected[key]:
            raise ModelSpecError(f"model file {path}: sha256 {actual} does not match weights_sha256.{key} "
                                 f"{expected[key]} in {root}; refusing to load it")
        paths[key] = path
    return paths
