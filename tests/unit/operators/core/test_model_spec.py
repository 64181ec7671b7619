"""Model bundle loading: fields, hash verified before anything loads the TorchScript."""

import json
import shutil

import pytest
import torch

from operators.core.errors import ModelSpecError
from operators.core.model.spec import METADATA_PATH, MODEL_PATH, find_model, load_model_spec, sha256_of


class Doubler(torch.nn.Module):
    def forward(self, x):
        return x[:, :1] * 2.0


def write_bundle(root, **overrides):
    (root / MODEL_PATH).parent.mkdir(parents=True)
    (root / METADATA_PATH).parent.mkdir(parents=True)
    torch.jit.script(Doubler()).save(str(root / MODEL_PATH))
    meta = {
        "name": "test_model",
        "version": "1.2.3",
        "labels": ["GTV"],
        "sha256": sha256_of(root / MODEL_PATH),
        "preprocessing": {
            "channels": ["T1c", "FLAIR"],
            "spacing_mm": [2, 2, 2],
            "orientation": "LPS",
            "normalisation": {"method": "zscore", "region": "nonzero", "clip": 5, "outside": 0},
            "patch_size": [32, 32, 32],
        },
        "postprocessing": {"threshold": 0.5, "min_component_mm3": 100, "fill_holes": True},
    }
    meta.update(overrides)
    (root / METADATA_PATH).write_text(json.dumps(meta))
    return root


def test_valid_bundle_loads(tmp_path):
    spec = load_model_spec(write_bundle(tmp_path / "b"))
    assert spec.name == "test_model" and spec.version == "1.2.3"
    assert spec.preprocessing.channels == ("T1c", "FLAIR")
    assert spec.preprocessing.spacing_mm == (2.0, 2.0, 2.0)
    assert spec.postprocessing.min_component_mm3 == 100
    assert spec.identity()["sha256"] == sha256_of(tmp_path / "b" / MODEL_PATH)


def test_hash_mismatch_is_refused(tmp_path):
    root = write_bundle(tmp_path / "b")
    with open(root / MODEL_PATH, "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelSpecError, match=r"model\.ts: sha256 [0-9a-f]{64} does not match .*refusing to load"):
        load_model_spec(root)


def test_missing_model_file(tmp_path):
    root = write_bundle(tmp_path / "b")
    (root / MODEL_PATH).unlink()
    with pytest.raises(ModelSpecError, match=r"models/model\.ts is missing"):
        load_model_spec(root)


def test_missing_metadata(tmp_path):
    root = write_bundle(tmp_path / "b")
    (root / METADATA_PATH).unlink()
    with pytest.raises(ModelSpecError, match=r"configs/metadata\.json is missing"):
        load_model_spec(root)


def test_missing_folder(tmp_path):
    with pytest.raises(ModelSpecError, match="does not exist"):
        load_model_spec(tmp_path / "nope")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"labels": ["Tumour"]}, "label name 'Tumour' is not in the structure registry"),
        ({"sha256": "abc"}, "sha256 must be 64 hex characters"),
        ({"preprocessing": {"channels": ["T1c"]}},
         r"metadata\.json: preprocessing: required field 'spacing_mm' is missing"),
    ],
)
def test_bad_fields_name_the_field(tmp_path, override, message):
    root = write_bundle(tmp_path / "b", **override)
    with pytest.raises(ModelSpecError, match=message):
        load_model_spec(root)


def test_bad_orientation(tmp_path):
    root = write_bundle(tmp_path / "b")
    meta = json.loads((root / METADATA_PATH).read_text())
    meta["preprocessing"]["orientation"] = "ASL"
    (root / METADATA_PATH).write_text(json.dumps(meta))
    with pytest.raises(ModelSpecError, match="orientation must be one of .* found 'ASL'"):
        load_model_spec(root)


def test_find_model_in_a_folder_of_bundles(tmp_path):
    write_bundle(tmp_path / "models" / "gtv")
    assert find_model(tmp_path / "models").name == "test_model"
    shutil.copytree(tmp_path / "models" / "gtv", tmp_path / "models" / "gtv2")
    with pytest.raises(ModelSpecError, match=r"bundles \['gtv', 'gtv2'\] are GTV models for the same channels"):
        find_model(tmp_path / "models")


def test_several_channel_configurations_richest_first(tmp_path):
    from operators.core.model.spec import find_gtv_models

    pre = {"spacing_mm": [2, 2, 2], "orientation": "LPS", "patch_size": [32, 32, 32],
           "normalisation": {"method": "zscore", "region": "nonzero", "clip": 5, "outside": 0}}
    write_bundle(tmp_path / "models" / "alone", name="t1c_alone", preprocessing={**pre, "channels": ["T1c"]})
    write_bundle(tmp_path / "models" / "both", name="with_flair", preprocessing={**pre, "channels": ["T1c", "FLAIR"]})
    assert [s.name for s in find_gtv_models(tmp_path / "models")] == ["with_flair", "t1c_alone"]
    assert find_model(tmp_path / "models").name == "with_flair"


def test_corrupt_metadata_in_a_folder_of_bundles(tmp_path):
    root = write_bundle(tmp_path / "models" / "gtv")
    (root / METADATA_PATH).write_text("{not json")
    with pytest.raises(ModelSpecError, match=r"metadata\.json is not valid JSON"):
        find_model(tmp_path / "models")


def test_folder_without_bundles(tmp_path):
    (tmp_path / "models" / "empty").mkdir(parents=True)
    with pytest.raises(ModelSpecError, match="holds no model bundle"):
        find_model(tmp_path / "models")
