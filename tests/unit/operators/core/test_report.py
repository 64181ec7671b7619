"""Review picture: the slices shown follow the mask and, in evaluations, the reference drawn beside it."""

import numpy as np
from PIL import Image

from operators.core.geometry import Grid, Volume
from operators.core.writers.report import render_png


def test_slices_follow_the_mask_and_the_reference(tmp_path):
    grid = Grid.from_parts((12, 32, 32), origin=np.zeros(3), spacing=np.array([1.0, 1.0, 3.0]), direction=np.eye(3))
    image = Volume(np.random.default_rng(0).normal(size=grid.shape).astype(np.float32), grid)
    mask = np.zeros(grid.shape, bool)
    mask[2:4, 10:20, 10:20] = True
    reference = np.zeros(grid.shape, bool)
    reference[8:10, 12:18, 12:18] = True  # a reference the mask missed: its slices must be shown too
    alone = render_png(tmp_path / "a.png", image, image.with_array(mask), title="mask")
    both = render_png(tmp_path / "b.png", image, image.with_array(mask), title="mask and reference",
                      others=[(reference, (0, 255, 0))])
    assert alone == [2, 3]
    assert both == [2, 3, 8, 9]
    with Image.open(tmp_path / "b.png") as png:
        rgb = np.asarray(png.convert("RGB"))
    green = (rgb[..., 1] > 150) & (rgb[..., 0] < 100) & (rgb[..., 2] < 100)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 100) & (rgb[..., 2] < 100)
    assert green.any() and red.any()  # both outlines are drawn
