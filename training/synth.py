"""SynthSeg-style synthetic MR images generated from whole-head label maps.

Method after Billot et al., "SynthSeg", Medical Image Analysis 86, 2023, written from the paper's description.
One sample is made in this order (every random draw comes from the caller's ``numpy.random.Generator`` in a fixed
order, and every parameter is drawn whether or not it is used, so a seed gives the same sample whatever the
probabilities in the config):

1. **Spatial**: an axis-aligned LPS output grid (``config.shape`` ``(Z, Y, X)`` at ``config.spacing_mm``) centred on
   the label map's brain centre plus a random shift. The anatomy is moved by ``F = R @ Shear @ Scale`` about that
   centre plus a smooth elastic displacement (a coarse random grid of displacements, upsampled with cubic splines).
   The label map is sampled once, nearest neighbour, at the composed coordinates of every output voxel: the label
   map is warped into the output grid, and image and target are voxel-aligned on it.
2. **Contrast** (Gaussian mixture): every voxel of class ``c`` gets ``N(mean_c, std_c)``. ``"random"``: one class per
   SynthSeg generation class (``generation_classes.npy``; left/right distinct), ``mean_c ~ U(0, 255)``,
   ``std_c ~ U(0, 25)``. ``"t1"``: one class per tissue of :data:`T1_TISSUES`, mean and std drawn from Gaussian
   hyper-priors.
3. Partial-volume blur, Gaussian ``sigma ~ U(0, 0.5)`` output voxels.
4. Bias field: ``image *= exp(field)``, field upsampled from a coarse ``4^3`` grid of ``N(0, s)``, ``s ~ U(0, 0.3)``.
5. Min-max normalisation to ``[0, 1]``, gamma ``image ** exp(N(0, 0.25))``.
6. Gaussian noise, ``std ~ U(0, 0.05)`` (on the ``[0, 1]`` scale).
7. Thick slices, with probability ``thick_slice_prob``: on a random axis, a Gaussian blur of FWHM = slice thickness
   ``U(2, 7)`` mm, sampling at slice spacing = thickness + gap ``U(0, 1.5)`` mm, linear interpolation back to the
   output grid (:func:`simulate_thick_slices`). Noise is added before, as in a real acquisition.
8. Final min-max normalisation: the returned image spans exactly ``[0, 1]`` (min 0, max 1; a constant image is all
   zeros). Whatever reads real images for a model trained on these must apply the same per-volume min-max
   (:func:`minmax_normalise`).

Departures from SynthSeg, for speed on CPU (< 1 s a sample): the mixture is sampled at the output resolution, not at
1 mm and then downsampled; the elastic field is a plain displacement (small against its 20 mm control spacing, so it
does not fold), not an integrated velocity field.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

from operators.core.errors import ConfigError
from operators.core.geometry import Grid, Volume

logger = logging.getLogger(__name__)

HIPPOCAMPUS_LABELS: tuple[int, ...] = (17, 53)
EXTRACEREBRAL_MIN_LABEL = 500
"""Labels >= 500 in the SynthSeg maps are outside the brain (skull, scalp, eyes, ...); labels 1..499 are brain
tissue and CSF inside the skull (FreeSurfer convention), which is what the ``"brain"`` target covers (SynthStrip's
choice: the mask includes the extra-cerebral CSF, label 24, up to the inner skull)."""
CONTRASTS = ("random", "t1")
TARGET_MODES = ("hippocampus", "labels", "brain")
DEFAULT_PRIORS_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "synthseg-label-maps" / "priors"
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_LUT_SIZE = 1024  # labels >= this fall in the "other" class

# T1-weighted tissue hyper-priors, HAND-DEFINED here because SynthSeg's label-to-class file for its T1 priors
# (generation_classes_contrast_specific.npy) is not in our data. Values on SynthSeg's 0-255 scale:
# (mean of the class mean, std of the class mean, mean of the class std, std of the class std).
# Ordering follows T1-weighted MR: fat and white matter bright, grey matter darker, CSF, fluid and cortical bone dark.
# Spread checked against prior_means_t1/prior_stds_t1 (means 7-160, stds 5-84): tests/unit/training/test_synth.py.
T1_TISSUES: dict[str, tuple[float, float, float, float]] = {
    "air": (10, 5, 5, 2),  # background: outside the head, sinuses, airway (label 0)
    "white_matter": (145, 12, 8, 3),
    "wm_like": (125, 12, 9, 3),  # brainstem, ventral DC, optic chiasm/nerve, spinal cord
    "thalamus": (115, 12, 9, 3),
    "pallidum": (125, 12, 9, 3),
    "striatum": (95, 12, 9, 3),  # caudate, putamen, accumbens
    "grey_matter": (85, 12, 10, 4),  # cerebral and cerebellar cortex, hippocampus, amygdala
    "csf": (30, 10, 8, 3),  # ventricles, extra-ventricular CSF
    "lesion": (65, 15, 10, 4),  # FreeSurfer 25/57
    "vessel": (60, 25, 15, 6),  # FreeSurfer 30/62 and 502
    "periventricular": (70, 15, 12, 4),  # 136/137/163/164: unnamed, lining the lateral ventricles
    "eye": (25, 8, 6, 3),  # vitreous
    "cortical_bone": (20, 8, 8, 4),
    "marrow": (115, 25, 20, 8),  # cancellous bone with fatty marrow (skull base, mandible, vertebrae)
    "soft_tissue": (90, 20, 20, 8),  # muscle and fat of face and neck
    "scalp": (150, 20, 20, 8),  # skin and subcutaneous fat
    "mucosa": (95, 20, 18, 8),  # nasal and pharyngeal mucosa
    "dura_sinus": (55, 20, 15, 6),  # along the inner skull: dura and venous sinuses
    "orbital": (120, 20, 18, 8),  # orbital fat and muscles
    "other": (80, 40, 15, 8),  # any label not listed below
}
# FreeSurfer label -> tissue. The extra-cerebral labels (500+) have no names in the SynthSeg release; their tissue
# was inferred here from position, size and neighbours in training_seg_01 (e.g. 515: a shell between CSF and
# scalp = skull; 506: two 7 ml spheres in front of the brain = eyes).
T1_LABEL_TISSUE: dict[int, str] = {
    0: "air", 2: "white_matter", 41: "white_matter", 7: "white_matter", 46: "white_matter",
    16: "wm_like", 28: "wm_like", 60: "wm_like", 85: "wm_like", 512: "wm_like", 530: "wm_like",
    10: "thalamus", 49: "thalamus", 13: "pallidum", 52: "pallidum",
    11: "striatum", 50: "striatum", 12: "striatum", 51: "striatum", 26: "striatum", 58: "striatum",
    3: "grey_matter", 42: "grey_matter", 8: "grey_matter", 47: "grey_matter",
    17: "grey_matter", 53: "grey_matter", 18: "grey_matter", 54: "grey_matter",
    4: "csf", 5: "csf", 43: "csf", 44: "csf", 14: "csf", 15: "csf", 24: "csf", 72: "csf",
    25: "lesion", 57: "lesion", 30: "vessel", 62: "vessel", 502: "vessel",
    136: "periventricular", 137: "periventricular", 163: "periventricular", 164: "periventricular",
    506: "eye", 515: "cortical_bone", 516: "marrow", 507: "soft_tissue", 511: "scalp", 509: "mucosa",
    514: "dura_sinus", 508: "orbital",
}  # fmt: skip


@dataclass(frozen=True)
class SynthConfig:
    """Settings of :func:`generate`; ranges are ``(low, high)`` of a uniform draw unless named otherwise.

    Attributes:
        spacing_mm: isotropic output spacing.
        shape: output ``(Z, Y, X)``; the default 160 x 192 x 160 mm covers the brain, see :meth:`whole_head`.
        max_shift_mm: grid centre = brain centre + ``U(-max, max)`` per axis.
        rotation_max_deg: rotation about each LPS axis ``U(-max, max)``.
        scaling_range: anatomy scale factor per axis.
        shear_max: each off-diagonal shear term ``U(-max, max)``.
        elastic_max_std_mm: displacement std ``U(0, max)`` on an ``elastic_grid^3`` coarse grid; 0 disables.
        contrast: ``"random"`` (domain randomisation) or ``"t1"`` (:data:`T1_TISSUES`).
        random_mean_range, random_std_range: class mean and std draws in ``"random"`` contrast.
        blur_max_sigma_vox: partial-volume blur sigma ``U(0, max)`` in output voxels.
        bias_max_std: log bias field std ``U(0, max)`` on a ``bias_grid^3`` coarse grid.
        gamma_std: gamma exponent ``exp(N(0, gamma_std))``.
        noise_max_std: additive noise std ``U(0, max)`` on the ``[0, 1]`` scale.
        thick_slice_prob: probability of thick-slice simulation.
        thick_slice_thickness_mm: slice thickness (= FWHM of the slice profile).
        thick_slice_gap_mm: gap; slice spacing = thickness + gap.
        skull_strip: set every voxel outside the brain (label 0 and the extra-cerebral labels >= 500) to 0 at the
            end, like skull-stripped data (BraTS); the source task then looks like the target task's input.
        priors_dir: folder with ``generation_labels.npy`` and ``generation_classes.npy`` (``"random"`` contrast).
    """

    spacing_mm: float = 2.0
    shape: tuple[int, int, int] = (80, 96, 80)
    max_shift_mm: float = 10.0
    rotation_max_deg: float = 15.0
    scaling_range: tuple[float, float] = (0.85, 1.15)
    shear_max: float = 0.012
    elastic_max_std_mm: float = 3.0
    elastic_grid: int = 8
    contrast: str = "random"
    random_mean_range: tuple[float, float] = (0.0, 255.0)
    random_std_range: tuple[float, float] = (0.0, 25.0)
    blur_max_sigma_vox: float = 0.5
    bias_max_std: float = 0.3
    bias_grid: int = 4
    gamma_std: float = 0.25
    noise_max_std: float = 0.05
    thick_slice_prob: float = 0.5
    thick_slice_thickness_mm: tuple[float, float] = (2.0, 7.0)
    thick_slice_gap_mm: tuple[float, float] = (0.0, 1.5)
    skull_strip: bool = False
    priors_dir: str = str(DEFAULT_PRIORS_DIR)

    def __post_init__(self) -> None:
        if self.contrast not in CONTRASTS:
            raise ConfigError(f"SynthConfig.contrast must be one of {CONTRASTS}, found {self.contrast!r}")
        if self.spacing_mm <= 0 or len(self.shape) != 3 or min(self.shape) < 4:
            raise ConfigError(
                f"SynthConfig: spacing_mm must be > 0 and shape three sizes >= 4, found {self.spacing_mm}, {self.shape}"
            )
        for name in ("scaling_range", "random_mean_range", "random_std_range", "thick_slice_thickness_mm",
                     "thick_slice_gap_mm"):  # fmt: skip
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ConfigError(f"SynthConfig.{name} must be (low, high) with 0 <= low <= high, found {(lo, hi)}")
        grids = min(self.elastic_grid, self.bias_grid)
        if self.scaling_range[0] <= 0 or not 0 <= self.thick_slice_prob <= 1 or grids < 2:
            raise ConfigError(
                "SynthConfig: scaling must be > 0, thick_slice_prob in [0, 1], elastic_grid and bias_grid >= 2; found "
                f"{self.scaling_range}, {self.thick_slice_prob}, {self.elastic_grid}, {self.bias_grid}"
            )

    @classmethod
    def whole_head(cls, **overrides: object) -> SynthConfig:
        """Skull-stripping preset: a 192 x 224 x 192 mm field of view over the whole head, rotations up to 20 deg."""
        settings: dict[str, object] = {"shape": (96, 112, 96), "rotation_max_deg": 20.0, "max_shift_mm": 15.0}
        return cls(**(settings | overrides))

    @classmethod
    def no_augmentation(cls, **overrides: object) -> SynthConfig:
        """Identity geometry (label map resampled onto the output grid), no blur, bias, gamma, noise or thick slices."""
        settings: dict[str, object] = {
            "max_shift_mm": 0.0, "rotation_max_deg": 0.0, "scaling_range": (1.0, 1.0), "shear_max": 0.0,
            "elastic_max_std_mm": 0.0, "blur_max_sigma_vox": 0.0, "bias_max_std": 0.0, "gamma_std": 0.0,
            "noise_max_std": 0.0, "thick_slice_prob": 0.0,
        }  # fmt: skip
        return cls(**(settings | overrides))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SynthConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"SynthConfig: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@functools.lru_cache(maxsize=4)
def _random_class_lut(priors_dir: str) -> tuple[np.ndarray, int]:
    """``(LUT (1024,) int32 label -> generation class, number of classes incl. the trailing "other" class)``."""
    paths = [Path(priors_dir) / n for n in ("generation_labels.npy", "generation_classes.npy")]
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"SynthConfig.priors_dir: {path} not found; the 'random' contrast needs SynthSeg priors")
    labels, classes = (np.load(p).astype(np.int64) for p in paths)
    if labels.shape != classes.shape or labels.min() < 0 or labels.max() >= _LUT_SIZE:
        raise ConfigError(f"{paths[0]} / {paths[1]}: expected equal-length label and class lists, labels in [0, 1023]")
    n_classes = int(classes.max()) + 1
    lut = np.full(_LUT_SIZE, n_classes, dtype=np.int32)
    lut[labels] = classes
    return lut, n_classes + 1


@functools.lru_cache(maxsize=1)
def _t1_lut() -> tuple[np.ndarray, np.ndarray]:
    """``(LUT (1024,) int32 label -> tissue row, hyper-priors (n_tissues, 4) float64)`` from :data:`T1_TISSUES`."""
    names = list(T1_TISSUES)
    lut = np.full(_LUT_SIZE, names.index("other"), dtype=np.int32)
    for label, tissue in T1_LABEL_TISSUE.items():
        lut[label] = names.index(tissue)
    return lut, np.array([T1_TISSUES[n] for n in names], dtype=np.float64)


def minmax_normalise(image: np.ndarray) -> np.ndarray:
    """``(image - min) / (max - min)`` as float32 in ``[0, 1]``; all zeros when the image is constant."""
    image = np.asarray(image, dtype=np.float32)
    lo, hi = float(image.min()), float(image.max())
    if hi - lo <= 1e-12:
        return np.zeros_like(image)
    return (image - lo) / np.float32(hi - lo)


@functools.lru_cache(maxsize=32)
def _spline_upsampling(n_coarse: int, n_out: int) -> np.ndarray:
    """``(n_out, n_coarse)`` cubic-spline interpolation from coarse control points spread over the extent."""
    return ndi.zoom(np.eye(n_coarse), (n_out / n_coarse, 1.0), order=3, mode="nearest", grid_mode=True)


def _smooth_field(coarse: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Upsample a ``(n, n, n)`` coarse grid to a smooth ``shape`` ``(Z, Y, X)`` float32 field."""
    mz, my, mx = (_spline_upsampling(coarse.shape[a], shape[a]) for a in range(3))
    field = np.tensordot(mz, coarse, axes=(1, 0))  # (Z, n, n)
    field = np.tensordot(field, my, axes=(1, 1))  # (Z, n, Y)
    field = np.tensordot(field, mx, axes=(1, 1))  # (Z, Y, X)
    return field.astype(np.float32)


def _linear_weights(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(len(dst), len(src))`` linear interpolation from increasing positions ``src`` to ``dst``, clamped at ends."""
    w = np.zeros((len(dst), len(src)))
    if len(src) == 1:
        w[:, 0] = 1.0
        return w
    lo = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, len(src) - 2)
    t = np.clip((dst - src[lo]) / (src[lo + 1] - src[lo]), 0.0, 1.0)
    rows = np.arange(len(dst))
    w[rows, lo] = 1.0 - t
    w[rows, lo + 1] = t
    return w


def simulate_thick_slices(
    image: np.ndarray, *, axis: int, voxel_mm: float, thickness_mm: float, spacing_mm: float, offset_mm: float = 0.0
) -> np.ndarray:
    """Make ``image`` look acquired in thick slices along ``axis``, on its own grid.

    Blurs along ``axis`` with a Gaussian of FWHM ``thickness_mm``, samples slices every ``spacing_mm`` starting
    ``offset_mm`` from the first voxel centre (spacing > thickness leaves gaps), and interpolates linearly back.

    Args:
        image: ``(Z, Y, X)`` float; ``axis`` indexes it (0 = Z).
        voxel_mm: voxel size of ``image`` along ``axis``.

    Returns:
        ``(Z, Y, X)`` float32.
    """
    sigma_vox = thickness_mm / FWHM_PER_SIGMA / voxel_mm
    blurred = ndi.gaussian_filter1d(np.asarray(image, dtype=np.float32), sigma_vox, axis=axis, mode="nearest")
    positions = np.arange(image.shape[axis]) * voxel_mm
    slices = np.arange(offset_mm % spacing_mm, positions[-1] + 1e-9, spacing_mm)
    if len(slices) == 0:
        slices = np.array([positions[-1] / 2])
    weights = _linear_weights(slices, positions) @ _linear_weights(positions, slices)  # (n, n)
    out = np.tensordot(weights.astype(np.float32), np.moveaxis(blurred, axis, 0), axes=(1, 0))
    return np.moveaxis(out, 0, axis)


def brain_centre_lps(label_map: Volume, *, label_values: np.ndarray | None = None, stride: int = 4) -> np.ndarray:
    """``(3,)`` LPS mm: centroid of the brain labels (1..499) over every ``stride``-th voxel; grid centre if none."""
    sub = label_map.array[::stride, ::stride, ::stride]
    labels = label_values[sub] if label_values is not None else sub
    mask = (labels > 0) & (labels < EXTRACEREBRAL_MIN_LABEL)
    total = int(mask.sum())
    if total == 0:
        logger.warning("label map holds no brain label (1..499); centring on the grid centre")
        kji_mean = (np.array(label_map.grid.shape) - 1) / 2.0
    else:
        marginals = [mask.sum(axis=tuple(a for a in range(3) if a != axis)) for axis in range(3)]
        kji_mean = np.array([np.arange(len(m)) @ m for m in marginals]) / total * stride
    return label_map.grid.index_to_lps(kji_mean[::-1])[0]


def _sample_labels(
    label_map: Volume,
    config: SynthConfig,
    rng: np.random.Generator,
    label_values: np.ndarray | None,
    centre_lps: np.ndarray | None,
    params: dict,
) -> tuple[np.ndarray, Grid]:
    """Warp the label map into a new output grid: ``((Z, Y, X) int32 labels, grid)``."""
    c = config
    shape = tuple(int(s) for s in c.shape)
    shift = rng.uniform(-c.max_shift_mm, c.max_shift_mm, 3)
    angles = rng.uniform(-c.rotation_max_deg, c.rotation_max_deg, 3)
    scales = rng.uniform(*c.scaling_range, 3)
    shear_terms = rng.uniform(-c.shear_max, c.shear_max, 6)
    elastic_std = rng.uniform(0.0, c.elastic_max_std_mm)
    elastic = rng.standard_normal((3, c.elastic_grid, c.elastic_grid, c.elastic_grid)) * elastic_std

    if centre_lps is None:
        centre_lps = brain_centre_lps(label_map, label_values=label_values)
    centre = np.asarray(centre_lps, dtype=np.float64) + shift
    size_xyz = np.array(shape[::-1], dtype=np.float64)
    origin = centre - (size_xyz - 1) / 2 * c.spacing_mm
    grid = Grid.from_parts(shape, origin=origin, spacing=np.full(3, c.spacing_mm), direction=np.eye(3))
    shear = np.eye(3)
    shear[~np.eye(3, dtype=bool)] = shear_terms
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()  # about L, then P, then S
    forward = rotation @ shear @ np.diag(scales)  # moves the anatomy about `centre`
    inv_src = np.linalg.inv(label_map.grid.affine)
    # source index = inv_src3 @ (centre + M (p - centre) + u(p)) + inv_src_t, p = origin + spacing * (i, j, k)
    b = inv_src[:3, :3] @ np.linalg.inv(forward)
    b0 = inv_src[:3, :3] @ centre + inv_src[:3, 3] + b @ (origin - centre)
    ramps = [np.arange(n, dtype=np.float64) * c.spacing_mm for n in size_xyz]  # i, j, k in mm
    views = [ramps[0][None, None, :], ramps[1][None, :, None], ramps[2][:, None, None]]
    coords = np.empty((3, *shape))
    disp = [_smooth_field(elastic[a], shape) for a in range(3)] if elastic_std > 0 else None
    for row, r in enumerate((2, 1, 0)):  # array axes of the source: k, j, i
        coords[row] = b[r, 0] * views[0] + b[r, 1] * views[1] + b[r, 2] * views[2] + b0[r]
        if disp is not None:
            coords[row] += inv_src[r, 0] * disp[0] + inv_src[r, 1] * disp[1] + inv_src[r, 2] * disp[2]
    sampled = ndi.map_coordinates(label_map.array, coords, order=0, mode="grid-constant", cval=0)
    if label_values is not None:
        labels = label_values[sampled].astype(np.int32)
    else:
        labels = np.rint(sampled).astype(np.int32) if sampled.dtype.kind == "f" else sampled.astype(np.int32)
    params.update(shift_mm=shift, angles_deg=angles, scales=scales, shear=shear_terms, elastic_std_mm=elastic_std)
    return labels, grid


def _mixture(labels: np.ndarray, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-mixture intensities ``(Z, Y, X)`` float32 for ``labels`` ``(Z, Y, X)``."""
    if config.contrast == "random":
        lut, n = _random_class_lut(config.priors_dir)
        means = rng.uniform(*config.random_mean_range, n)
        stds = rng.uniform(*config.random_std_range, n)
    else:
        lut, priors = _t1_lut()
        means = rng.normal(priors[:, 0], priors[:, 1])
        stds = np.abs(rng.normal(priors[:, 2], priors[:, 3]))
    cls = lut[np.clip(labels, 0, _LUT_SIZE - 1)]
    noise = rng.standard_normal(labels.shape, dtype=np.float32)
    return means.astype(np.float32)[cls] + stds.astype(np.float32)[cls] * noise


def generate(
    label_map: Volume,
    *,
    config: SynthConfig,
    rng: np.random.Generator,
    target_labels: Sequence[int] | None = None,
    mode: str = "hippocampus",
    label_values: np.ndarray | None = None,
    centre_lps: np.ndarray | None = None,
    params: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, Grid]:
    """One synthetic image and its target from a label map (see the module docstring for the steps).

    Args:
        label_map: ``(Z, Y, X)`` FreeSurfer labels on any grid (SimpleITK/LPS geometry), integer or float dtype.
        config: generator settings; ``config.contrast`` picks the contrast.
        rng: the only source of randomness: the same generator state gives identical arrays.
        target_labels: the labels set to 1 in ``"labels"`` mode (required there, refused otherwise).
        mode: target: ``"hippocampus"`` (labels 17, 53), ``"labels"`` (``target_labels``) or ``"brain"`` (labels
            1..499: brain tissue and CSF inside the skull; extra-cerebral labels 500+ and background are 0).
        label_values: when given, ``label_map.array`` holds indices into this ``(n,)`` array of labels (compact
            uint8 storage, index 0 must be label 0).
        centre_lps: ``(3,)`` LPS mm brain centre (before the random shift); by default
            :func:`brain_centre_lps` with stride 4. Pass one computed once per label map to save the work.
        params: when given, filled with the drawn parameters (shift, angles, thick-slice axis, ...) for logging.

    Returns:
        ``image`` ``(Z, Y, X)`` float32 in ``[0, 1]``, ``target`` ``(Z, Y, X)`` uint8 in {0, 1}, and the output
        ``grid`` (axis-aligned LPS, ``config.spacing_mm``, shape ``config.shape``) on which both lie.
    """
    if mode not in TARGET_MODES:
        raise ConfigError(f"generate: mode must be one of {TARGET_MODES}, found {mode!r}")
    if (mode == "labels") != (target_labels is not None):
        raise ConfigError(f"generate: target_labels must be given exactly when mode == 'labels'; mode={mode!r}")
    if label_values is not None and (label_values.ndim != 1 or label_values[0] != 0):
        raise ConfigError("generate: label_values must be a 1-D array starting with label 0")
    c = config
    params = {} if params is None else params
    labels, grid = _sample_labels(label_map, c, rng, label_values, centre_lps, params)
    image = _mixture(labels, c, rng)
    blur_sigma = rng.uniform(0.0, c.blur_max_sigma_vox)
    bias_std = rng.uniform(0.0, c.bias_max_std)
    bias = rng.standard_normal((c.bias_grid,) * 3) * bias_std
    log_gamma = rng.standard_normal() * c.gamma_std
    noise_std = rng.uniform(0.0, c.noise_max_std)
    noise = rng.standard_normal(labels.shape, dtype=np.float32)
    thick = bool(rng.random() < c.thick_slice_prob)
    thick_axis = int(rng.integers(3))
    thickness = rng.uniform(*c.thick_slice_thickness_mm)
    slice_spacing = thickness + rng.uniform(*c.thick_slice_gap_mm)
    offset = rng.uniform(0.0, slice_spacing)

    if blur_sigma > 0:
        image = ndi.gaussian_filter(image, blur_sigma, mode="nearest")
    image = np.maximum(image, 0.0)
    if bias_std > 0:
        image = image * np.exp(_smooth_field(bias, labels.shape))
    image = minmax_normalise(image) ** np.float32(np.exp(log_gamma))
    image = image + np.float32(noise_std) * noise
    if thick:
        image = simulate_thick_slices(
            image, axis=thick_axis, voxel_mm=c.spacing_mm, thickness_mm=thickness, spacing_mm=slice_spacing,
            offset_mm=offset,
        )  # fmt: skip
    image = minmax_normalise(image)
    if c.skull_strip:
        image = np.where((labels > 0) & (labels < EXTRACEREBRAL_MIN_LABEL), image, np.float32(0.0))

    if mode == "brain":
        target = (labels > 0) & (labels < EXTRACEREBRAL_MIN_LABEL)
    else:
        target = np.isin(labels, HIPPOCAMPUS_LABELS if mode == "hippocampus" else np.asarray(target_labels))
    params.update(
        blur_sigma_vox=blur_sigma, bias_std=bias_std, gamma=float(np.exp(log_gamma)), noise_std=noise_std,
        thick_slices=thick, thick_axis=thick_axis, thickness_mm=thickness, slice_spacing_mm=slice_spacing,
    )  # fmt: skip
    logger.debug("synthetic sample: contrast=%s mode=%s %s", c.contrast, mode, params)
    return image, target.astype(np.uint8), grid
