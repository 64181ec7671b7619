"""app.yaml and the manifests generated from it, checked with holoscan-cli's own reading and packaging code.

holoscan-cli 4.2.0 (pinned in pyproject.toml): ``packager/config_reader.py`` validates app.yaml and fills the
manifests exactly as ``monai-deploy package`` would; ``runner/resources.py`` and ``common/dockerutils.py`` read
them when ``monai-deploy run`` starts a container.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from holoscan_cli.common.constants import DefaultValues
from holoscan_cli.packager.config_reader import ApplicationConfiguration
from holoscan_cli.packager.parameters import PackageBuildParameters
from holoscan_cli.runner.resources import get_shared_memory_size

from tools.map import manifests

REPO = Path(__file__).resolve().parents[3]
APP_YAML = REPO / "app.yaml"

# The image's ENV (Dockerfile), written as holoscan-cli's packager defaults (common/constants.py DefaultValues).
PACKAGER_ENV = {
    "HOLOSCAN_APPLICATION": str(DefaultValues.HOLOSCAN_APP_DIR),
    "HOLOSCAN_INPUT_PATH": str(DefaultValues.WORK_DIR / DefaultValues.INPUT_DIR) + "/",
    "HOLOSCAN_OUTPUT_PATH": str(DefaultValues.WORK_DIR / DefaultValues.OUTPUT_DIR) + "/",
    "HOLOSCAN_WORKDIR": str(DefaultValues.WORK_DIR),
    "HOLOSCAN_MODEL_PATH": str(DefaultValues.MODELS_DIR),
    "HOLOSCAN_CONFIG_PATH": str(DefaultValues.HOLOSCAN_CONFIG_PATH),
    "HOLOSCAN_APP_MANIFEST_PATH": DefaultValues.APP_MANIFEST_PATH,
    "HOLOSCAN_PKG_MANIFEST_PATH": DefaultValues.PKG_MANIFEST_PATH,
    "HOLOSCAN_DOCS_PATH": str(DefaultValues.HOLOSCAN_DOCS_DIR),
    "HOLOSCAN_LOGS_PATH": str(DefaultValues.HOLOSCAN_LOGS_DIR),
}
MODELS = ["brain_extraction", "glioblastoma_gtv"]


@pytest.fixture()
def holoscan_cli_manifests(tmp_path):
    """app.json and pkg.json as holoscan-cli's packager fills them from app.yaml for this application."""
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "__main__.py").write_text("")
    params = PackageBuildParameters()
    params.application = app_dir  # a Python application folder: command python3 /opt/holoscan/app
    params.models = {name: tmp_path / name for name in MODELS}
    config = ApplicationConfiguration()
    config.read(APP_YAML)  # holoscan-cli's own validation of app.yaml
    app = config.populate_app_manifest(params).data
    pkg = config.populate_package_manifest(params).data
    # Set by packager/arguments.py from the SDK in use and the platform (x86_64 -> dgpu).
    app["sdk"], app["sdkVersion"], pkg["platformConfig"] = "monai-deploy", "4.0.0", "dgpu"
    return json.loads(json.dumps(app, default=str)), json.loads(json.dumps(pkg, default=str))


def test_dockerfile_env_is_the_packager_layout(image_env):
    assert {k: image_env.get(k) for k in PACKAGER_ENV} == PACKAGER_ENV
    assert image_env["HOLOSCAN_TIMEOUT"] == str(DefaultValues.TIMEOUT)


def test_generated_manifests_equal_holoscan_clis(holoscan_cli_manifests, image_env):
    config = manifests.read_config(APP_YAML)
    app = manifests.app_manifest(config, image_env, sdk_version="4.0.0")
    pkg = manifests.package_manifest(config, image_env, model_names=MODELS)
    expected_app, expected_pkg = holoscan_cli_manifests
    # holoscan-cli 4.2.0 reads the formats from 'input-formats'/'output-formats', while its documentation (and
    # the MONAI Deploy examples) write inputFormats/outputFormats; app.yaml follows the documentation.
    for key in ("input", "output"):
        assert expected_app[key]["formats"] is None
        expected_app[key]["formats"] = ["file"]
    assert app == expected_app
    assert pkg == expected_pkg
    assert list(app) == list(expected_app) and list(pkg) == list(expected_pkg)  # same field order


def test_app_yaml_resources():
    res = manifests.read_config(APP_YAML)["resources"]
    assert res["gpu"] == 1 and res["cpu"] >= 1
    assert get_shared_memory_size({"resources": res}, False, False, None, "config") == 1024**3


def test_written_files_and_models(tmp_path, monkeypatch, capsys, image_env):
    models = tmp_path / "models"
    for name in MODELS:
        (models / name / "configs").mkdir(parents=True)
    (models / "README.md").write_text("not a model")
    env = {**image_env, "HOLOSCAN_MODEL_PATH": str(models)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert manifests.main(["--config", str(APP_YAML), "--out", str(tmp_path / "etc")]) == 0
    pkg = json.loads((tmp_path / "etc" / "pkg.json").read_text())
    assert pkg["models"] == {name: f"{models}/{name}" for name in MODELS}
    app = json.loads((tmp_path / "etc" / "app.json").read_text())
    assert json.loads(app["command"]) == ["python3", "/opt/holoscan/app"]
    assert "wrote" in capsys.readouterr().out


def test_get_prints_one_key(capsys):
    assert manifests.main(["--config", str(APP_YAML), "--get", "application.version"]) == 0
    assert capsys.readouterr().out.strip() == "0.1.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("resources: {cpu: 1}\n", "'application' must give a non-empty 'title' and 'version'"),
        ("application: {title: t, version: 1}\n", "'resources' .* is missing"),
        ("application: {title: t, version: 1}\nresources: {gpus: 1}\n", r"unknown resources \['gpus'\]"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_is_refused(tmp_path, text, message):
    path = tmp_path / "app.yaml"
    path.write_text(text)
    with pytest.raises(manifests.ManifestError, match=message):
        manifests.read_config(path)


def test_missing_environment_is_named(image_env):
    config = manifests.read_config(APP_YAML)
    env = {k: v for k, v in image_env.items() if k != "HOLOSCAN_LOGS_PATH"}
    with pytest.raises(manifests.ManifestError, match=r"\['HOLOSCAN_LOGS_PATH'\] are not set"):
        manifests.app_manifest(config, env, sdk_version="4.0.0")
