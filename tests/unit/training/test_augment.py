"""Channel dropout on a real BraTS patch (T1c + FLAIR): one sequence blanked at a time, the other untouched."""

import numpy as np
import SimpleITK as sitk
import torch

from training.augment import RandChannelDropoutd

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

