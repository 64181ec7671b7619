"""Augmentation on a real BraTS patch (T1c + FLAIR): channel dropout blanks one sequence at a time and leaves the
other untouched; the optional flips along the other two axes move image and label together."""

import numpy as np
import SimpleITK as sitk
import torch
from monai.transforms import RandFlipd

from training.augment import RandChannelDropoutd, training_transforms
from training.config import AugmentConfig

CASE = "Brats18_CBICA_AQN_1"


def _patch(shared_data) -> torch.Tensor:
    folder = shared_data / "brats2018" / CASE
    arrays = [sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{CASE}_{s}.nii.gz"))) for s in ("t1ce", "flair")]
    return torch.as_tensor(np.stack(arrays)[:, 60:92, 100:132, 100:132].astype(np.float32))


def test_channel_dropout_blanks_one_channel_and_both_are_drawn(shared_data):
    image = _patch(shared_data)
    assert (image != 0).any(dim=(1, 2, 3)).all()  # both sequences carry brain here
    blanked = []
    for seed in range(20):
        t = RandChannelDropoutd(["image"], prob=1.0)
        t.set_random_state(seed=seed)
        out = t({"image": image})["image"]
        zero = [c for c in range(2) if not out[c].any()]
        assert len(zero) == 1
        kept = 1 - zero[0]
        assert torch.equal(out[kept], image[kept])
        blanked.append(zero[0])
    assert set(blanked) == {0, 1}
    assert (image != 0).any(dim=(1, 2, 3)).all()  # the input itself is not modified


def test_channel_dropout_off_or_single_channel_leaves_the_image(shared_data):
    image = _patch(shared_data)
    off = RandChannelDropoutd(["image"], prob=0.0)
    assert torch.equal(off({"image": image})["image"], image)
    single = RandChannelDropoutd(["image"], prob=1.0)
    assert torch.equal(single({"image": image[:1]})["image"], image[:1])


def _spatial_only(**kw) -> AugmentConfig:
    """Every random intensity and geometry change off, so that only the flips act."""
    return AugmentConfig(affine_prob=0.0, intensity_prob=0.0, bias_field_prob=0.0, thick_slice_prob=0.0,
                         noise_prob=0.0, **kw)


def test_flips_along_the_other_axes_move_image_and_label_together(shared_data):
    image = _patch(shared_data)
    label = (image[1:] > image[1].mean()).float()  # any label that is not symmetric will do
    t = training_transforms(_spatial_only(flip_lr=0.0, flip_other=1.0), patch_size=(32, 32, 32), spacing_mm=2.0)
    t.set_random_state(seed=0)
    out = t({"image": image, "label": label})[0]
    # array axes (Z, Y, X): superior-inferior and anterior-posterior flipped, left-right kept
    assert torch.equal(torch.as_tensor(out["image"]), torch.flip(image, (1, 2)))
    assert torch.equal(torch.as_tensor(out["label"]), torch.flip(label, (1, 2)))


def test_the_other_flips_are_only_in_the_pipeline_when_asked_for():
    """Off, they are not in the pipeline at all, so every earlier recipe draws the same random numbers."""
    def flip_axes(cfg):
        t = training_transforms(cfg, patch_size=(32, 32, 32), spacing_mm=2.0)
        return [x.flipper.spatial_axis for x in t.transforms if isinstance(x, RandFlipd)]

    assert flip_axes(AugmentConfig()) == [2]
    assert flip_axes(AugmentConfig(flip_other=0.5)) == [2, 1, 0]
