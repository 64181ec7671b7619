"""The training loss on real BraTS labels: per-patch Dice (the default) against Dice over the batch."""

import numpy as np
import SimpleITK as sitk
import torch

from training.config import OptimConfig
from training.train import segmentation_loss

CASE = "Brats18_CBICA_AQN_1"


def _core_patches(shared_data) -> tuple[torch.Tensor, torch.Tensor]:
    """A 32^3 patch through the tumour core and one 64 mm in front of it, free of tumour, as a batch of 2."""
    seg = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "brats2018" / CASE / f"{CASE}_seg.nii.gz")))
    core = np.isin(seg, (1, 4))
    z, y, x = (int(round(c)) for c in np.argwhere(core).mean(axis=0))
    tumour = core[z - 16:z + 16, y - 16:y + 16, x - 16:x + 16]
    empty = core[z - 16:z + 16, y - 80:y - 48, x - 16:x + 16]
    assert tumour.sum() > 1000 and not empty.any()
    return torch.as_tensor(np.stack([tumour, empty])[:, None].astype(np.float32)), torch.as_tensor(tumour)


def _logits(label: torch.Tensor) -> torch.Tensor:
    return label * 20.0 - 10.0  # confident: sigmoid 1 - 4.5e-5 inside, 4.5e-5 outside


def test_per_patch_dice_gives_a_tumour_free_patch_a_constant_loss_and_batch_dice_counts_its_false_positives(
        shared_data):
    label, _ = _core_patches(shared_data)
    per_patch = segmentation_loss(OptimConfig())
    batch = segmentation_loss(OptimConfig(batch_dice=True))

    # the reference itself: per patch, the tumour-free patch's soft Dice is about 0 (its probabilities are never
    # exactly 0), so half the batch's Dice loss is 1 whatever is predicted there; over the batch it is about 0
    exact_patch, exact_batch = per_patch(_logits(label), label).item(), batch(_logits(label), label).item()
    assert 0.49 < exact_patch < 0.51
    assert exact_batch < 0.01

    blob = label.clone()
    blob[1, 0, 4:20, 4:20, 4:20] = 1  # 4096 false-positive voxels in the tumour-free patch
    rise_patch = per_patch(_logits(blob), label).item() - exact_patch
    rise_batch = batch(_logits(blob), label).item() - exact_batch
    # cross-entropy, the same in both, rises with the blob; only batch Dice adds the blob to its denominator:
    # 4096 / (2 x the patch's core + 4096), about 0.11 for this core
    assert rise_patch > 0.3
    core = float(label[0].sum())
    assert abs((rise_batch - rise_patch) - 4096 / (2 * core + 4096)) < 0.01


def test_both_losses_agree_when_every_patch_holds_tumour(shared_data):
    _, tumour = _core_patches(shared_data)
    both = torch.stack([tumour, tumour])[:, None].float()
    shrunk = both.clone()
    shrunk[0, 0, :, :, :16] = 0  # half of the first patch's core missed
    per_patch = segmentation_loss(OptimConfig())(_logits(shrunk), both).item()
    batch = segmentation_loss(OptimConfig(batch_dice=True))(_logits(shrunk), both).item()
    assert per_patch > 0.1 and batch > 0.1
    assert abs(per_patch - batch) < 0.1 * per_patch
