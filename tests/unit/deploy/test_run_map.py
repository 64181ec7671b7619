"""tools/map/run_map.py starts the container as holoscan-cli's runner (`monai-deploy run`) does.

The reference is holoscan-cli's own ``common/dockerutils.py::docker_run``, called with the generated manifests and a
stand-in for its Docker client that records what it would create.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from holoscan_cli.common import dockerutils

from tools.map import manifests, run_map

REPO = Path(__file__).resolve().parents[3]


class Created(Exception):
    """Raised by the stand-in Docker client, carrying the arguments of container.create."""


class FakeDocker:
    class container:  # noqa: N801 - mirrors python_on_whales' docker.container
        @staticmethod
        def create(image, **kwargs):
            raise Created(image, kwargs)


@pytest.fixture()
def manifest_pair(image_env):
    config = manifests.read_config(REPO / "app.yaml")
    env = image_env
    return (manifests.app_manifest(config, env, sdk_version="4.0.0"),
            manifests.package_manifest(config, env, model_names=["glioblastoma_gtv"]))


def holoscan_cli_container(monkeypatch, app, pkg, tmp_path) -> dict:
    monkeypatch.setattr(dockerutils, "docker", FakeDocker)
    with pytest.raises(Created) as created:
        dockerutils.docker_run(None, "gbm-gtv-map:test", tmp_path / "in", tmp_path / "out", app, pkg, True, [], False,
                               "gbm-gtv-map-network", None, False, "0", None, False, "1000:1000", False, [], "dgpu",
                               None, False, True)
    return created.value.args[1]


def test_same_mounts_environment_and_user_as_monai_deploy_run(monkeypatch, manifest_pair, tmp_path):
    app, pkg = manifest_pair
    expected = holoscan_cli_container(monkeypatch, app, pkg, tmp_path)
    argv = run_map.docker_run_argv("gbm-gtv-map:test", app, pkg, input_dir=tmp_path / "in",
                                   output_dir=tmp_path / "out", gpus="0")
    env = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-e")
    assert env == expected["envs"]
    assert env["HOLOSCAN_INPUT_PATH"] == "/var/holoscan/input"
    assert env["HOLOSCAN_OUTPUT_PATH"] == "/var/holoscan/output"
    mounts = [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]
    # Same host folders at the same places; the input is read-only here.
    assert mounts == [f"{expected['volumes'][0][0]}:{expected['volumes'][0][1]}:ro",
                      f"{expected['volumes'][1][0]}:{expected['volumes'][1][1]}"]
    assert argv[argv.index("--user") + 1] == expected["user"] == "1000:1000"
    assert argv[argv.index("--workdir") + 1] == expected["workdir"] == "/var/holoscan"
    # The runner asks for memlock=-1 (refused by an unprivileged engine) and a 64 MB stack; the stack is kept.
    assert "stack=67108864" in expected["ulimit"] and f"stack={run_map.STACK_BYTES}" in argv
    assert expected["cap_add"] == ["CAP_SYS_PTRACE"] and "SYS_PTRACE" in argv
    assert argv[-1] == "gbm-gtv-map:test" and "--network" in argv and "none" in argv


def test_gpu_count_comes_from_pkg_json_when_not_given(manifest_pair):
    app, pkg = manifest_pair
    assert run_map.run_environment(app, pkg, gpus=None)["NVIDIA_VISIBLE_DEVICES"] == "0"  # resources.gpu: 1
    assert run_map.run_environment(app, {"resources": {}}, gpus=None)["NVIDIA_VISIBLE_DEVICES"] == "all"


def test_models_override_is_read_only(manifest_pair, tmp_path):
    app, pkg = manifest_pair
    argv = run_map.docker_run_argv("img", app, pkg, input_dir=tmp_path, output_dir=tmp_path, models_dir=tmp_path)
    assert f"{tmp_path.resolve()}:/opt/holoscan/models:ro" in argv
