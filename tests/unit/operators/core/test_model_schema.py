"""The model-metadata schema: one set of defaults for training, export, the app and the tests."""

import json

import pytest

from operators.core.errors import ConfigError, ModelSpecError
from operators.core.model.schema import Postprocessing, Preprocessing, app_metadata
from operators.core.model.spec import load_model_spec
from training.config import TrainConfig, load_config


def test_round_trip_through_json():
    pre = Preprocessing(channels=("T1c",), spacing_mm=(1.0, 1.5, 3.0), patch_size=(32, 48, 64),
                        brain_mask_model="brain_extraction")
    post = Postprocessing(min_component_mm3=200.0, min_component_fraction=0.3)
    assert Preprocessing.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre
    assert Postprocessing.from_dict(json.loads(json.dumps(post.to_dict()))) == post


def test_training_defaults_are_the_schema_defaults():
    config = TrainConfig(name="x", task="gtv", out_dir="work/x")
    assert config.postprocessing == Postprocessing() and config.preprocessing == Preprocessing()
    assert Postprocessing().min_component_mm3 == 0.0  # one default, stated here so that a change is deliberate


def test_bundled_gtv_config_reaches_the_metadata_unchanged():
    config = load_config("training/configs/gtv.yaml")
    spec = load_model_spec("models/glioblastoma_gtv")
    # the bundled model was exported from this configuration: the app reads back what training holds
    assert spec.preprocessing == config.preprocessing
    assert spec.postprocessing == config.postprocessing


def test_metadata_requires_the_grid_but_a_config_may_default_it():
    with pytest.raises(ModelSpecError, match=r"preprocessing: required field 'spacing_mm' is missing"):
        Preprocessing.from_dict({"channels": ["T1c"], "orientation": "LPS", "patch_size": [32, 32, 32],
                                 "normalisation": {"method": "zscore"}})
    assert Preprocessing.from_dict({"channels": ["T1c"]}, require_all=False).spacing_mm == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("section, value, message", [
    ("postprocessing", {"treshold": 0.5}, r"unknown key\(s\) \['treshold'\]"),
    ("postprocessing", {"threshold": 1.5}, r"threshold must lie between 0 and 1, found 1.5"),
    ("postprocessing", {"activation": "relu"}, r"activation must be one of"),
    ("postprocessing", {"core_threshold": 0.4}, r"core_threshold must lie between threshold \(0.5\) and 1, found 0.4"),
    ("postprocessing", {"keep_core_mm3": -1}, r"keep_core_mm3 must not be negative, found -1.0"),
    ("preprocessing", {"orientation": "XYZ"}, r"orientation must be one of \('LPS', 'RAS'\), found 'XYZ'"),
])
def test_bad_values_are_named(tmp_path, section, value, message):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"name": "x", "task": "gtv", "out_dir": "w", section: value}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_app_metadata_is_what_the_app_parses(tmp_path):
    meta = app_metadata(name="m", version="1", sha256="0" * 64, labels=["GTV"], preprocessing=Preprocessing(),
                        postprocessing=Postprocessing())
    assert set(meta) == {"name", "version", "labels", "sha256", "preprocessing", "postprocessing"}
