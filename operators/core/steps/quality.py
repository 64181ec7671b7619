"""The quality verdict: signals computed on every run, compared with the range the model was validated on.

A contour that looks like every other one in the report is reviewed like every other one. The signals here tell the
reviewer when a contour deserves more than the usual care; they never block the output (the clinician decides) and
never replace an error (inputs the app cannot process still fail).

Signals (each written to the report with its value and limit; ``None`` where it cannot be measured):

=========================  ==========================================================================================
input conformance          in-plane spacing and slice spacing of the reference series; ``ContrastBolusAgent``
                           recorded on it (a post-contrast series should say so)
brain mask sanity          brain volume; share of the brain's surface that lies on the edge of the field of view (a
                           study cut through the brain)
channel registration       the shift of each other channel that best matches T1c (normalised mutual information
                           around the brain, searched along each axis): more than a few mm means not registered
GTV plausibility           volume; number of connected components; share of the GTV within a few mm of the brain's
                           outer surface (skull, dura and vessels look like enhancing rim); enhancement: the 90th
                           percentile of T1c inside the GTV over the median of T1c in the rest of the brain
model confidence           share of the voxels the network is unsure of (probability between 0.3 and 0.7) among those
                           of the GTV
=========================  ==========================================================================================

Every flag has a severity; the verdict is the most severe one (``ok`` when none). The limits are the model's
(``quality`` in its metadata; defaults in :class:`QualityLimits`) and were chosen on the project's own cases:
docs/quality.md has the table of every signal on every case, with its Dice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom import Dataset
from scipy import ndimage

from operators.core.geometry import Volume

VERDICTS = ("ok", "review", "unreliable")
#: what each verdict adds to the DICOM objects' descriptions (a planning system shows SeriesDescription and
#: StructureSetLabel in its structure-set list)
VERDICT_TAG = {"ok": "", "review": "REVIEW", "unreliable": "UNRELIABLE"}
UNSURE = (0.3, 0.7)
#: every flag code the verdict can raise: its severity and what it means for the reviewer
FLAG_CODES = {
    "INPLANE_SPACING": ("review", "in-plane pixels coarser than validated"),
    "SLICE_SPACING": ("review", "slices farther apart than validated"),
    "NO_CONTRAST_RECORDED": ("review", "the T1c series records no contrast agent: it may be a pre-contrast T1"),
    "BRAIN_VOLUME": ("review", "brain mask volume outside that of whole brains validated"),
    "BRAIN_AT_FOV_EDGE": ("review", "the field of view cuts the brain (part of the brain not imaged)"),
    "MISREGISTERED_<CHANNEL>": ("unreliable", "a channel matches T1c best when shifted: not registered to it"),
    "NO_GTV": ("review", "no GTV found (a valid outcome; check the study for a missed lesion)"),
    "GTV_LARGE": ("review", "GTV larger than validated"),
    "GTV_COMPONENTS": ("review", "GTV in several separate parts (a far part is the typical false positive)"),
    "GTV_AT_BRAIN_SURFACE": ("review", "much of the GTV at the brain surface (dura, vessels, bone)"),
    "GTV_NOT_ENHANCING": ("review", "GTV darker than normal brain on T1c"),
    "MODEL_UNSURE": ("review", "many voxels with probability 0.3-0.7 around the GTV"),
    "FALLBACK_MODEL": ("review", "the study lacks a sequence of the main model: a less accurate fallback model ran"),
}


@dataclass(frozen=True)
class QualityLimits:
    """The validated range of a GTV model and the limits of each signal (``quality`` in the model's metadata).

    Attributes:
        inplane_spacing_mm_max: coarsest in-plane pixel spacing validated (mm).
        slice_spacing_mm_max: largest distance between slices validated (mm).
        brain_cm3: brain volumes seen on validation (whole adult brains), ``(min, max)``.
        brain_edge_fraction_max: share of the brain surface allowed on the edge of the field of view.
        registration_search_mm: how far the other channels are shifted to test their registration to T1c.
        registration_offset_mm_max: the largest best-matching shift accepted as registered (mm).
        gtv_cm3_max: largest GTV validated (cm3); a larger one is more likely to hold false positives.
        gtv_components_max: connected components of the GTV beyond which it is flagged (glioblastoma is mostly one
            lesion; a far component is the typical false positive).
        gtv_surface_mm: distance from the brain's outer surface that counts as "at the surface".
        gtv_surface_fraction_max: share of the GTV allowed at the surface.
        gtv_enhancement_min: lowest 90th-percentile T1c of the GTV over median T1c of the brain (a tumour core on a
            post-contrast T1 has an enhancing rim; on a pre-contrast T1 it has none).
        unsure_fraction_max: share of unsure voxels (probability 0.3-0.7) over GTV voxels.
        fallback: empty for a main model; for a model the app runs only when a study lacks a sequence of a better
            validated one (the T1c-alone model), why every contour it draws is flagged ``FALLBACK_MODEL``.
    """

    inplane_spacing_mm_max: float = 1.3
    slice_spacing_mm_max: float = 6.5
    brain_cm3: tuple[float, float] = (900.0, 1900.0)
    brain_edge_fraction_max: float = 0.1
    registration_search_mm: float = 12.0
    registration_offset_mm_max: float = 4.5
    gtv_cm3_max: float = 150.0
    gtv_components_max: int = 1
    gtv_surface_mm: float = 3.0
    gtv_surface_fraction_max: float = 0.35
    gtv_enhancement_min: float = 0.7
    unsure_fraction_max: float = 0.4
    fallback: str = ""

    @classmethod
    def from_dict(cls, d: dict | None) -> QualityLimits:
        """From the metadata's ``quality`` object; unknown keys are an error, missing ones take the defaults."""
        d = dict(d or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown quality limit(s) {unknown}; known: {sorted(names)}")
        if "brain_cm3" in d:
            d["brain_cm3"] = tuple(float(v) for v in d["brain_cm3"])
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Flag:
    """One signal outside its limit. ``severity`` is ``"review"`` or ``"unreliable"``."""

    code: str
    message: str
    value: float | str | None
    limit: float | str | list | None
    severity: str = "review"

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "value": self.value, "limit": self.limit}


@dataclass(frozen=True)
class Quality:
    """Attributes:
    verdict: ``"ok"``, ``"review"`` or ``"unreliable"``.
    flags: the signals outside their limits.
    signals: every signal's value (``None`` where not measurable), for the report and the validation table.
    """

    verdict: str
    flags: tuple[Flag, ...] = ()
    signals: dict = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """``""``, ``"REVIEW"`` or ``"UNRELIABLE"``."""
        return VERDICT_TAG[self.verdict]

    def to_dict(self) -> dict:
        """The report's ``quality`` object: exactly ``verdict`` and ``flags``."""
        return {"verdict": self.verdict, "flags": [f.to_dict() for f in self.flags]}


def verdict_fields(quality: Quality | None) -> dict:
    """``build_rtstruct``'s ``verdict`` and ``verdict_note`` for a verdict (empty for ok or none)."""
    if quality is None or not quality.tag:
        return {}
    return {"verdict": quality.tag, "verdict_note": " ".join(f"{f.code}: {f.message}." for f in quality.flags)}


def banner(quality: Quality) -> tuple[str, str]:
    """``(verdict, text)`` of the review picture's verdict line."""
    if not quality.flags:
        return quality.verdict, "QUALITY OK: every signal within the range the model was validated on"
    codes = ", ".join(f.code for f in quality.flags)
    return quality.verdict, f"QUALITY {quality.tag}: {codes} (see gtv_report.json)"


def seg_description(quality: Quality | None) -> str:
    """The SEG's SeriesDescription (LO, at most 64 characters), with the verdict's tag when it is not ok."""
    tag = quality.tag if quality is not None else ""
    return f"GTV auto-segmentation {tag + ' ' if tag else ''}(UNAPPROVED)"


# ---- signals ------------------------------------------------------------------------------------------------------


def contrast_agent_recorded(headers: Sequence[Dataset] | None) -> bool | None:
    """Whether the reference series records a contrast agent (ContrastBolusAgent (0018,0010) or its sequence);
    None without headers (a NIfTI case)."""
    if not headers:
        return None
    ds = headers[0]
    return bool(str(ds.get("ContrastBolusAgent", "") or "").strip() or ds.get("ContrastBolusAgentSequence"))


def edge_fraction(mask: np.ndarray) -> float:
    """Share of the mask's surface voxels that lie on the array's outer faces (the field of view's edge)."""
    if not mask.any():
        return 0.0
    surface = mask & ~ndimage.binary_erosion(mask)
    border = np.zeros_like(mask)
    for axis in range(3):
        index = [slice(None)] * 3
        for end in (0, -1):
            index[axis] = end
            border[tuple(index)] = True
    return float((surface & border).sum() / max(surface.sum(), 1))


def normalised_mutual_information(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Studholme's NMI ``(H(a) + H(b)) / H(a, b)`` of two samples (1 for independent, 2 for identical)."""
    if a.size < 100:
        return float("nan")
    lo_a, hi_a = np.percentile(a, [0.5, 99.5])
    lo_b, hi_b = np.percentile(b, [0.5, 99.5])
    joint, _, _ = np.histogram2d(np.clip(a, lo_a, hi_a), np.clip(b, lo_b, hi_b), bins=bins)
    p = joint / joint.sum()
    px, py = p.sum(axis=1), p.sum(axis=0)

    def h(q):
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    return (h(px) + h(py)) / h(p.ravel())


def registration_offset_mm(fixed: Volume, moving: Volume, brain: np.ndarray, *, search_mm: float,
                           step_mm: float = 2.0, margin_mm: float = 8.0) -> float:
    """The shift of ``moving`` (same grid as ``fixed``) that best explains ``fixed``: for each axis, the shift within
    ``+-search_mm`` (steps of about ``step_mm``) that maximises their normalised mutual information inside the brain
    grown by ``margin_mm`` (its edges are what a misregistration moves); the length of the three in mm. About 0 for
    registered series."""
    spacing_zyx = np.asarray(fixed.grid.spacing_zyx)
    step = np.maximum(1, np.round(step_mm / spacing_zyx)).astype(int)
    sub = tuple(slice(None, None, int(s)) for s in step)
    f, m = fixed.array[sub].astype(np.float32), moving.array[sub].astype(np.float32)
    coarse = spacing_zyx * step
    inside = ndimage.binary_dilation(brain[sub], iterations=max(1, int(round(margin_mm / coarse.max()))))
    # shifting wraps voxels around the array's faces: leave out those that can wrap
    for axis in range(3):
        k = int(np.ceil(search_mm / coarse[axis]))
        index = [slice(None)] * 3
        index[axis] = slice(0, k)
        inside[tuple(index)] = False
        index[axis] = slice(inside.shape[axis] - k, None)
        inside[tuple(index)] = False
    a = f[inside]
    best = np.zeros(3)
    for axis in range(3):
        k = int(np.ceil(search_mm / coarse[axis]))
        scores = {d: normalised_mutual_information(a, np.roll(m, d, axis=axis)[inside]) for d in range(-k, k + 1)}
        best[axis] = max(scores, key=lambda d: (scores[d], -abs(d))) * coarse[axis]
    return float(np.linalg.norm(best))


def enhancement_ratio(t1c: np.ndarray, gtv: np.ndarray, brain: np.ndarray) -> float | None:
    """90th percentile of T1c in the GTV over the median of T1c in the brain outside it."""
    rest = brain & ~gtv
    if not gtv.any() or rest.sum() < 100:
        return None
    background = float(np.median(t1c[rest]))
    if background <= 0:
        return None
    return float(np.percentile(t1c[gtv], 90) / background)


def surface_fraction(gtv: np.ndarray, brain: np.ndarray, spacing_zyx, mm: float) -> float | None:
    """Share of the GTV within ``mm`` of the outside of the brain."""
    if not gtv.any() or not brain.any():
        return None
    depth = ndimage.distance_transform_edt(brain, sampling=spacing_zyx)
    return float((depth[gtv] <= mm).mean())


# ---- the verdict --------------------------------------------------------------------------------------------------


def measure(channels: Sequence[Volume], channel_names: Sequence[str], gtv: np.ndarray, probability: np.ndarray,
            brain: np.ndarray | None, limits: QualityLimits, *, headers: Sequence[Dataset] | None = None) -> dict:
    """Every signal of this run (``None`` where it cannot be measured). Arguments as :func:`assess`."""
    reference = channels[0]
    grid = reference.grid
    spacing_zyx = np.asarray(grid.spacing_zyx)
    voxel_cm3 = grid.voxel_volume_mm3 / 1000.0
    s: dict = {
        "inplane_spacing_mm": round(float(max(grid.spacing[0], grid.spacing[1])), 3),
        "slice_spacing_mm": round(float(grid.spacing[2]), 3),
        "contrast_agent_recorded": contrast_agent_recorded(headers),
        "brain_cm3": None, "brain_edge_fraction": None,
    }
    if brain is not None:
        s["brain_cm3"] = round(float(brain.sum() * voxel_cm3), 1)
        s["brain_edge_fraction"] = round(edge_fraction(brain), 4)
    for name, volume in zip(channel_names[1:], channels[1:]):
        s[f"registration_offset_mm_{name}"] = (
            round(registration_offset_mm(reference, volume, brain, search_mm=limits.registration_search_mm), 2)
            if brain is not None else None)
    s["gtv_cm3"] = round(float(gtv.sum() * voxel_cm3), 2)
    s["gtv_components"] = int(ndimage.label(gtv, structure=np.ones((3, 3, 3), bool))[1]) if gtv.any() else 0
    s["gtv_surface_fraction"] = (_round(surface_fraction(gtv, brain, spacing_zyx, limits.gtv_surface_mm), 3)
                                 if brain is not None else None)
    s["gtv_enhancement"] = _round(enhancement_ratio(reference.array, gtv, brain), 3) if brain is not None else None
    s["unsure_fraction"] = None
    if gtv.any():
        unsure = (probability > UNSURE[0]) & (probability < UNSURE[1])
        if brain is not None:
            unsure &= brain
        s["unsure_fraction"] = round(float(unsure.sum() / gtv.sum()), 3)
    return s


def judge(s: dict, limits: QualityLimits) -> Quality:
    """The flags and verdict of measured signals ``s`` (:func:`measure`) under ``limits``."""
    flags: list[Flag] = []
    if limits.fallback:
        flags.append(Flag("FALLBACK_MODEL", limits.fallback, None, None))

    def above(key: str, limit: float) -> bool:
        return s.get(key) is not None and s[key] > limit

    if above("inplane_spacing_mm", limits.inplane_spacing_mm_max):
        flags.append(Flag("INPLANE_SPACING", f"in-plane pixel spacing {s['inplane_spacing_mm']} mm is coarser than "
                          f"the {limits.inplane_spacing_mm_max} mm validated", s["inplane_spacing_mm"],
                          limits.inplane_spacing_mm_max))
    if above("slice_spacing_mm", limits.slice_spacing_mm_max):
        flags.append(Flag("SLICE_SPACING", f"slices {s['slice_spacing_mm']} mm apart, more than the "
                          f"{limits.slice_spacing_mm_max} mm validated", s["slice_spacing_mm"],
                          limits.slice_spacing_mm_max))
    if s.get("contrast_agent_recorded") is False:
        flags.append(Flag("NO_CONTRAST_RECORDED", "the T1 post-contrast series records no contrast agent "
                          "(ContrastBolusAgent (0018,0010) empty): check it is post-contrast", "not recorded",
                          "recorded"))
    lo, hi = limits.brain_cm3
    if s.get("brain_cm3") is not None and not lo <= s["brain_cm3"] <= hi:
        flags.append(Flag("BRAIN_VOLUME", f"brain mask {s['brain_cm3']:.0f} cm3, outside the {lo:.0f}-{hi:.0f} "
                          "cm3 of whole brains validated: the brain may be cut by the field of view or mis-segmented",
                          s["brain_cm3"], [lo, hi]))
    if above("brain_edge_fraction", limits.brain_edge_fraction_max):
        flags.append(Flag("BRAIN_AT_FOV_EDGE", f"{100 * s['brain_edge_fraction']:.1f} % of the brain's surface lies "
                          "on the edge of the field of view: the study does not cover the whole brain",
                          s["brain_edge_fraction"], limits.brain_edge_fraction_max))
    for key in sorted(k for k in s if k.startswith("registration_offset_mm_")):
        name = key.removeprefix("registration_offset_mm_")
        if above(key, limits.registration_offset_mm_max):
            flags.append(Flag(f"MISREGISTERED_{name.upper()}", f"{name} matches T1c best when shifted by "
                              f"{s[key]:.1f} mm: it is not registered to T1c", s[key],
                              limits.registration_offset_mm_max, "unreliable"))
    if s.get("gtv_cm3", 0) == 0:
        flags.append(Flag("NO_GTV", "no GTV found: check the study for a lesion the model missed", 0.0, None))
    if above("gtv_cm3", limits.gtv_cm3_max):
        flags.append(Flag("GTV_LARGE", f"GTV {s['gtv_cm3']:.0f} cm3, larger than the {limits.gtv_cm3_max:g} cm3 "
                          "validated", s["gtv_cm3"], limits.gtv_cm3_max))
    if above("gtv_components", limits.gtv_components_max):
        flags.append(Flag("GTV_COMPONENTS", f"GTV in {s['gtv_components']} separate parts: check each (a far part "
                          "is the typical false positive)", s["gtv_components"], limits.gtv_components_max))
    if above("gtv_surface_fraction", limits.gtv_surface_fraction_max):
        flags.append(Flag("GTV_AT_BRAIN_SURFACE", f"{100 * s['gtv_surface_fraction']:.0f} % of the GTV lies within "
                          f"{limits.gtv_surface_mm:g} mm of the brain surface (dura, vessels and bone look like "
                          "enhancing rim)", s["gtv_surface_fraction"], limits.gtv_surface_fraction_max))
    if s.get("gtv_enhancement") is not None and s["gtv_enhancement"] < limits.gtv_enhancement_min:
        flags.append(Flag("GTV_NOT_ENHANCING", f"the GTV is not brighter than normal brain on T1c (ratio "
                          f"{s['gtv_enhancement']:.2f}): no enhancing rim, or T1c is not post-contrast",
                          s["gtv_enhancement"], limits.gtv_enhancement_min))
    if above("unsure_fraction", limits.unsure_fraction_max):
        flags.append(Flag("MODEL_UNSURE", f"the network is unsure (probability 0.3-0.7) on "
                          f"{s['unsure_fraction']:.2f} voxels per GTV voxel", s["unsure_fraction"],
                          limits.unsure_fraction_max))
    severity = max((VERDICTS.index(f.severity) for f in flags), default=0)
    return Quality(verdict=VERDICTS[severity], flags=tuple(flags), signals=s)


def assess(channels: Sequence[Volume], channel_names: Sequence[str], gtv: np.ndarray, probability: np.ndarray,
           brain: np.ndarray | None, limits: QualityLimits, *, headers: Sequence[Dataset] | None = None) -> Quality:
    """Every signal of this run and the verdict they give (:func:`measure`, then :func:`judge`).

    Args:
        channels: the channel volumes on the reference grid (the first is T1 post-contrast), as the network saw them.
        channel_names: their names (``spec.preprocessing.channels``).
        gtv: ``(Z, Y, X)`` bool final GTV on the reference grid.
        probability: ``(Z, Y, X)`` the network's GTV probability on the reference grid.
        brain: ``(Z, Y, X)`` bool brain tissue, or None for a model without brain extraction.
        limits: the model's :class:`QualityLimits`.
        headers: the reference series' headers in slice order (None for a NIfTI case).
    """
    signals = measure(channels, channel_names, gtv, probability, brain, limits, headers=headers)
    return judge(signals, limits)


def _round(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)
