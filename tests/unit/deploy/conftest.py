"""Shared by the deployment tests: the image's HOLOSCAN_* paths, as the Dockerfile's ENV sets them."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def read_dockerfile_env(dockerfile: Path = REPO / "Dockerfile") -> dict[str, str]:
    """HOLOSCAN_* variables of the Dockerfile's ENV instructions (continued lines included)."""
    env, in_env = {}, False
    for line in dockerfile.read_text().splitlines():
        if line.startswith("ENV "):
            in_env, line = True, line[4:]
        if in_env:
            key, _, value = line.strip().rstrip("\\").strip().partition("=")
            if key.startswith("HOLOSCAN_"):
                env[key] = value
            in_env = line.rstrip().endswith("\\")
    return env


@pytest.fixture()
def image_env() -> dict[str, str]:
    return read_dockerfile_env()
