"""Tiny training runs on real BraTS cases (CPU, seconds): determinism, resume, export round trip, evaluate."""

import json

import numpy as np
import pytest
import torch

from operators.core.model.predictor import TorchScriptPredictor
from operators.core.model.spec import load_model_spec
from training.config import ConfigError, load_config
from training.export import export_bundle, load_run_config
from training.train import DeepSupervision, build_network, train

TRAIN = ["Brats18_CBICA_AVG_1", "Brats18_TCIA01_425_1"]
VAL = ["Brats18_CBICA_AQN_1"]


@pytest.fixture
def tiny(tmp_path, shared_data):
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": TRAIN, "validation": VAL}))

    def make(name, *extra):
        return load_config(
            "training/configs/gtv.yaml",
            [
                f"data.root={shared_data / 'brats2018'}",
                f"data.split_file={split}",
                f"data.cache_dir={tmp_path / 'cache'}",
                "data.samples_per_epoch=2",
                "preprocessing.spacing_mm=[4.0, 4.0, 4.0]",
                "preprocessing.patch_size=[32, 32, 32]",
                "optim.epochs=2",
                "optim.threads=1",
                *extra,
            ],
            out_dir=str(tmp_path / name),
            name=name,
        )

    return make


def test_training_is_deterministic_and_resumable(tiny):
    a = train(tiny("a"), progress=False)
    b = train(tiny("b"), progress=False)
    assert len(a.history) == 2
    assert [e["train_loss"] for e in a.history] == [e["train_loss"] for e in b.history]
    assert a.best_checkpoint.is_file() and (a.out_dir / "last.pt").is_file()
    # resume: a third epoch continues from last.pt and keeps the first two epochs' history
    c = train(tiny("a", "optim.epochs=3"), progress=False)
    assert [e["epoch"] for e in c.history] == [1, 2, 3]
    assert c.history[:2] == a.history


def test_cpu_bf16_runs_in_mixed_precision_deterministically_and_close_to_fp32(tiny):
    fp32 = train(tiny("fp32"), progress=False)
    a = train(tiny("bf16_a", "optim.cpu_bf16=true"), progress=False)
    b = train(tiny("bf16_b", "optim.cpu_bf16=true"), progress=False)
    assert [e["train_loss"] for e in a.history] == [e["train_loss"] for e in b.history]
    assert a.history[0]["device"].endswith("bfloat16 autocast")
    assert "bfloat16" not in fp32.history[0]["device"]
    first_fp32, first_bf16 = fp32.history[0]["train_loss"], a.history[0]["train_loss"]
    # the same patches and initial weights: the first epoch's loss differs by rounding alone
    assert first_bf16 != first_fp32
    assert abs(first_bf16 - first_fp32) < 0.05 * first_fp32
    assert all(np.isfinite(e["val_dice"]) for e in a.history)


def test_different_seeds_differ(tiny):
    a = train(tiny("a"), progress=False)
    b = train(tiny("b", "seed=1"), progress=False)
    assert a.history[0]["train_loss"] != b.history[0]["train_loss"]


def test_finetune_from_a_one_channel_checkpoint(tiny):
    src = tiny("src", "preprocessing.channels=[T1c]", "optim.epochs=1")
    train(src, progress=False)
    ft = train(tiny("ft", f"init={src.out_dir}/best.pt", "optim.epochs=1"), progress=False)
    info = json.loads((ft.out_dir / "history.json").read_text())["init_info"]
    assert info["adapted"] == 1 and info["skipped"] == []


def test_export_round_trip_gives_identical_outputs(tiny, tmp_path):
    run = train(tiny("a", "optim.epochs=1"), progress=False)
    bundle = export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1",
                           training={"training_case_ids": TRAIN})
    spec = load_model_spec(bundle)
    assert spec.preprocessing.spacing_mm == (4.0, 4.0, 4.0)
    assert spec.metadata["training"]["training_case_ids"] == TRAIN
    cfg = load_run_config(run.out_dir)
    net = build_network(cfg.model, in_channels=2, out_channels=1)
    net.load_state_dict(torch.load(run.best_checkpoint, weights_only=False)["model"])
    net.eval()
    ts = torch.jit.load(str(spec.model_file))
    # traced on a batch of two patches; exact for another batch size and window shape too
    for x in (torch.randn(1, 2, 32, 40, 48), torch.randn(2, 2, *cfg.preprocessing.patch_size)):
        with torch.no_grad():
            torch.testing.assert_close(ts(x), net(x), rtol=0, atol=0)
    # a trace names only the operators the network runs (a script would carry F.interpolate's every branch, whose
    # newer operators an older PyTorch cannot load)
    assert "lanczos" not in str(ts.inlined_graph)
    probs = TorchScriptPredictor(spec, device="cpu").predict(np.random.default_rng(0).normal(size=(2, 20, 30, 25))
                                                             .astype(np.float32))
    assert probs.shape == (1, 20, 30, 25) and probs.min() >= 0 and probs.max() <= 1


def test_export_of_the_final_epoch(tiny, tmp_path):
    """``--checkpoint last``: the bundle holds the final epoch's weights and says so, for one run and for an ensemble
    of runs (each member its own final epoch)."""
    run = train(tiny("a", "optim.epochs=2"), progress=False)
    spec = load_model_spec(export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1",
                                         checkpoint="last.pt"))
    assert spec.metadata["training"]["checkpoint"] == "last.pt (epoch 2)"
    last = torch.load(run.out_dir / "last.pt", weights_only=False)["model"]
    ts = torch.jit.load(str(spec.model_file))
    for key, value in ts.state_dict().items():
        torch.testing.assert_close(value, last[key], rtol=0, atol=0)
    other = train(tiny("b", "optim.epochs=2", "seed=1"), progress=False)
    spec = load_model_spec(export_bundle([run.out_dir, other.out_dir], tmp_path / "ensemble", name="tiny",
                                         version="0.0.1", checkpoint="last.pt"))
    assert [m["checkpoint"] for m in spec.metadata["training"]["ensemble"]] == ["last.pt (epoch 2)"] * 2
    weights = torch.jit.load(str(spec.model_file)).state_dict()
    for i, member in enumerate((run, other)):
        for key, value in torch.load(member.out_dir / "last.pt", weights_only=False)["model"].items():
            torch.testing.assert_close(weights[f"members.{i}.{key}"], value, rtol=0, atol=0)


def test_onnxruntime_back_end_matches_torchscript_on_a_real_case(tiny, tmp_path, shared_data):
    """Every CPU back end against TorchScript fp32 on a real BraTS case: probabilities and masks."""
    from operators.core.model.predictor import OnnxRuntimePredictor
    from operators.core.steps.preprocess import to_model_input
    from training.brats import find_cases, read_volume, skull_stripped_brain_mask

    run = train(tiny("a", "optim.epochs=1"), progress=False)
    spec = load_model_spec(export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1"))
    case = find_cases(shared_data / "brats2018", spec.preprocessing.channels, case_ids=VAL)[0]
    channels = [read_volume(p) for p in case.channel_paths]
    image, _ = to_model_input(channels, spec.preprocessing, brain_mask=skull_stripped_brain_mask(channels))
    ref = TorchScriptPredictor(spec, device="cpu").predict(image)
    ort = OnnxRuntimePredictor(spec, threads=1).predict(image)
    assert np.abs(ort - ref).max() < 1e-4
    a, b = ref > 0.5, ort > 0.5
    assert a.sum() + b.sum() == 0 or 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.99


def test_tampered_onnx_is_refused(tiny, tmp_path):
    from operators.core.errors import ModelSpecError
    from operators.core.model.predictor import OnnxRuntimePredictor
    from operators.core.model.spec import ONNX_PATH

    run = train(tiny("a", "optim.epochs=1"), progress=False)
    spec = load_model_spec(export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1"))
    with open(spec.root / ONNX_PATH, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelSpecError, match=r"model\.onnx: sha256 .* does not match onnx_sha256"):
        OnnxRuntimePredictor(spec)


def test_ensemble_export_is_the_mean_of_its_members_in_every_format(tiny, tmp_path):
    """Two runs (two seeds) exported as one network: TorchScript and ONNX give the mean of the members' logits, and
    a run whose configuration disagrees is refused."""
    import onnxruntime

    from training.export import load_network

    a = train(tiny("a", "optim.epochs=1"), progress=False)
    b = train(tiny("b", "optim.epochs=1", "seed=1"), progress=False)
    spec = load_model_spec(export_bundle([a.out_dir, b.out_dir], tmp_path / "bundle", name="tiny", version="0.0.1"))
    assert spec.metadata["network"]["ensemble"]["members"] == 2
    assert [m["seed"] for m in spec.metadata["training"]["ensemble"]] == [0, 1]
    nets = [load_network(load_run_config(r.out_dir), r.best_checkpoint) for r in (a, b)]
    x = torch.randn(1, 2, 32, 40, 48)
    with torch.no_grad():
        expected = (nets[0](x) + nets[1](x)) / 2
        assert not torch.allclose(nets[0](x), nets[1](x))
        torch.testing.assert_close(torch.jit.load(str(spec.model_file))(x), expected, rtol=0, atol=1e-6)
    session = onnxruntime.InferenceSession(str(spec.root / "models/model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], expected.numpy(), atol=1e-4)
    c = train(tiny("c", "optim.epochs=1", "preprocessing.channels=[T1c]"), progress=False)
    with pytest.raises(ValueError, match="preprocessing differs"):
        export_bundle([a.out_dir, c.out_dir], tmp_path / "bad", name="tiny", version="0.0.1")


def test_weight_averaging_is_the_mean_of_the_final_epochs_and_survives_a_resume(tiny, tmp_path):
    """``optim.average_epochs``: ``average.pt`` is the mean of the weights at the end of the averaging epochs; a
    finished run continued into averaging epochs (its cosine schedule unchanged) gives the same weights as one run
    straight through; ``--checkpoint average`` exports exactly those weights and names the epochs."""
    train(tiny("a", "optim.epochs=2"), progress=False)
    a = train(tiny("a", "optim.epochs=3", "optim.average_epochs=1"), progress=False)
    w3 = torch.load(a.out_dir / "last.pt", weights_only=False)["model"]
    a = train(tiny("a", "optim.epochs=4", "optim.average_epochs=2"), progress=False)
    w4 = torch.load(a.out_dir / "last.pt", weights_only=False)["model"]
    average = torch.load(a.out_dir / "average.pt", weights_only=False)
    assert average["averaged_epochs"] == [3, 4]
    for key, value in average["model"].items():
        torch.testing.assert_close(value, (w3[key] + w4[key]) / 2)
    assert "val_dice_average" not in a.history[1]
    assert [e["averaged_epochs"] for e in a.history[2:]] == [[3, 3], [3, 4]]
    straight = train(tiny("b", "optim.epochs=4", "optim.average_epochs=2"), progress=False)
    assert [e["lr"] for e in straight.history] == [e["lr"] for e in a.history]
    for key, value in torch.load(straight.out_dir / "average.pt", weights_only=False)["model"].items():
        torch.testing.assert_close(value, average["model"][key])
    spec = load_model_spec(export_bundle(a.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1",
                                         checkpoint="average.pt"))
    assert spec.metadata["training"]["averaged_epochs"] == [3, 4]
    for key, value in torch.jit.load(str(spec.model_file)).state_dict().items():
        torch.testing.assert_close(value, average["model"][key], rtol=0, atol=0)


def test_averaging_every_epoch_is_refused(tiny):
    with pytest.raises(ConfigError, match="average_epochs"):
        tiny("a", "optim.epochs=2", "optim.average_epochs=2")


def test_the_configs_quality_limits_reach_the_bundle(tiny, tmp_path):
    """The T1c-alone config marks its model as a fallback; the export writes that into the metadata the app reads,
    and a misspelt limit is refused when the config is loaded."""
    assert load_config("training/configs/gtv_t1c.yaml").quality.fallback.startswith("no usable FLAIR")
    assert load_config("training/configs/gtv.yaml").quality.fallback == ""
    run = train(tiny("a", "optim.epochs=1", "quality.fallback=no FLAIR here", "quality.gtv_cm3_max=90"),
                progress=False)
    spec = load_model_spec(export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1"))
    assert spec.quality.fallback == "no FLAIR here" and spec.quality.gtv_cm3_max == 90
    with pytest.raises(ConfigError, match=r"quality: unknown quality limit\(s\) \['gtv_max'\]"):
        tiny("b", "quality.gtv_max=90")


def test_export_can_change_the_post_processing_not_the_network(tiny, tmp_path):
    """The same weights with another post-processing (``export --set``), as a study compares arms under one rule;
    anything that would change what the network was trained on is refused."""
    run = train(tiny("a", "optim.epochs=1"), progress=False)
    spec = load_model_spec(export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1",
                                         overrides=["postprocessing.keep_core_mm3=0", "postprocessing.threshold=0.4"]))
    assert spec.postprocessing.keep_core_mm3 == 0 and spec.postprocessing.threshold == 0.4
    assert spec.metadata["training"]["export_overrides"] == ["postprocessing.keep_core_mm3=0",
                                                             "postprocessing.threshold=0.4"]
    assert load_model_spec(export_bundle(run.out_dir, tmp_path / "plain", name="tiny", version="0.0.1")
                           ).postprocessing.keep_core_mm3 == 1000
    for bad in ("model.init_filters=16", "preprocessing.spacing_mm=[1, 1, 1]", "postprocessing"):
        with pytest.raises(ConfigError, match="expected KEY=VALUE with KEY under postprocessing or quality"):
            export_bundle(run.out_dir, tmp_path / "bad", name="tiny", version="0.0.1", overrides=[bad])
    with pytest.raises(ConfigError, match="keep_core_mm3 must not be negative"):
        export_bundle(run.out_dir, tmp_path / "bad", name="tiny", version="0.0.1",
                      overrides=["postprocessing.keep_core_mm3=-1"])
    assert not (tmp_path / "bad").exists()


def test_deep_supervision_heads_train_resume_and_stay_out_of_the_export(tiny, tmp_path):
    """``model.deep_supervision``: side heads on the decoder add their losses in training only; a resumed run
    restores them; validation and the exported network are the plain SegResNet with the same weights."""
    cfg = tiny("ds", "model.deep_supervision=2", "optim.epochs=1")
    net = build_network(cfg.model, in_channels=2, out_channels=1)
    wrapped = DeepSupervision(net, 2, 1)
    x = torch.randn(1, 2, 32, 32, 32)
    outputs = wrapped.train()(x)
    assert [tuple(o.shape[2:]) for o in outputs] == [(32, 32, 32), (16, 16, 16), (8, 8, 8)]
    with torch.no_grad():
        torch.testing.assert_close(wrapped.eval()(x), net.eval()(x), rtol=0, atol=0)

    plain = train(tiny("plain", "optim.epochs=1"), progress=False)
    ds = train(cfg, progress=False)
    assert ds.history[0]["train_loss"] > plain.history[0]["train_loss"]  # the side losses add to the main one
    heads = torch.load(ds.out_dir / "last.pt", weights_only=False)["side_heads"]
    assert len({k.split(".")[0] for k in heads}) == 2
    resumed = train(tiny("ds", "model.deep_supervision=2", "optim.epochs=2"), progress=False)
    straight = train(tiny("ds2", "model.deep_supervision=2", "optim.epochs=2"), progress=False)
    assert [e["train_loss"] for e in resumed.history] == [e["train_loss"] for e in straight.history]
    spec = load_model_spec(export_bundle(resumed.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1",
                                         checkpoint="last.pt"))
    last = torch.load(resumed.out_dir / "last.pt", weights_only=False)["model"]
    exported = torch.jit.load(str(spec.model_file)).state_dict()
    assert exported.keys() == last.keys()
    for key, value in exported.items():
        torch.testing.assert_close(value, last[key], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="deep_supervision"):
        tiny("bad", "model.deep_supervision=3")


def test_region_based_training_learns_the_whole_tumour_beside_the_core_and_exports_the_core_alone(tiny, tmp_path):
    """``data.auxiliary_labels``: the whole tumour as a second, training-only target. On real BraTS cases the patches
    are the ones the plain recipe draws, the auxiliary target moves with them (it holds the core), a one-output
    source checkpoint initialises both outputs, and the bundle is the core's output alone."""
    from training.augment import training_transforms
    from training.gtv_data import gtv_datasets
    from training.train import TransformedDataset

    whole = "data.auxiliary_labels=[[1, 2, 3, 4]]"
    cfg, plain_cfg = tiny("aux", whole, "optim.epochs=1"), tiny("plain", "optim.epochs=1")
    assert cfg.out_channels == 2 and plain_cfg.out_channels == 1

    def patches(config):
        base, _ = gtv_datasets(config)
        pre = config.preprocessing
        t = training_transforms(config.augment, patch_size=pre.patch_size, spacing_mm=float(pre.spacing_mm[0]))
        data = TransformedDataset(base, t, seed=config.seed)
        return [data[i] for i in range(len(data))]

    with_aux, plain = patches(cfg), patches(plain_cfg)
    for a, p in zip(with_aux, plain):
        torch.testing.assert_close(torch.as_tensor(a["image"]), torch.as_tensor(p["image"]), rtol=0, atol=0)
        torch.testing.assert_close(torch.as_tensor(a["label"]), torch.as_tensor(p["label"]), rtol=0, atol=0)
        aux, core = np.asarray(a["aux"]), np.asarray(a["label"])
        assert aux.shape == core.shape and aux.sum() > 0
        assert not np.any((core > 0) & (aux == 0))  # the core lies inside the whole tumour
        assert aux.sum() > core.sum()  # ... which holds the oedema too

    source = train(plain_cfg, progress=False)
    run = train(tiny("aux", whole, "optim.epochs=1", f"init={source.out_dir}/best.pt"), progress=False)
    info = json.loads((run.out_dir / "history.json").read_text())["init_info"]
    assert info["adapted"] == 2 and info["skipped"] == []  # the final convolution's weight and bias, repeated
    state = torch.load(run.out_dir / "best.pt", weights_only=False)["model"]
    assert state["conv_final.2.conv.weight"].shape[0] == 2

    spec = load_model_spec(export_bundle(run.out_dir, tmp_path / "bundle", name="tiny", version="0.0.1"))
    assert spec.metadata["training"]["auxiliary_labels_in_training"] == [[1, 2, 3, 4]]
    exported = torch.jit.load(str(spec.model_file)).eval()
    full = build_network(cfg.model, in_channels=2, out_channels=2)
    full.load_state_dict(state)
    x = torch.randn(1, 2, 32, 32, 32)
    with torch.no_grad():
        out = exported(x)
        assert out.shape[1] == 1
        torch.testing.assert_close(out, full.eval()(x)[:, :1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="auxiliary_labels"):
        load_config("training/configs/pretrain_msd_hippocampus.yaml", [whole])
