"""Enhanced (multi-frame) MR instances as single-frame headers, so that the rest of the pipeline sees slices.

:func:`frame_headers` gives one header per frame, carrying that frame's geometry and timing from the functional
groups and its frame number (1-based) in ReferencedFrameNumber (0008,1160), which the SEG and RTSTRUCT writers use
to reference the frame.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset

# Functional-group macros copied into each frame's header: sequence keyword -> attributes taken from its item.
_FRAME_GROUPS: dict[str, tuple[str, ...]] = {
    "PlanePositionSequence": ("ImagePositionPatient",),
    "PlaneOrientationSequence": ("ImageOrientationPatient",),
    "PixelMeasuresSequence": ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"),
    "PixelValueTransformationSequence": ("RescaleSlope", "RescaleIntercept", "RescaleType"),
    "MRTimingAndRelatedParametersSequence": ("RepetitionTime", "FlipAngle"),
    "MRImageFrameTypeSequence": ("FrameType",),
    "MRModifierSequence": ("InversionRecovery",),
    "ContrastBolusUsageSequence": ("ContrastBolusAgentAdministered",),
}
_SPLIT_AWAY = ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence")
# Legacy Converted Enhanced images keep the classic attributes that have no functional group in these sequences.
_UNASSIGNED = ("UnassignedSharedConvertedAttributesSequence", "UnassignedPerFrameConvertedAttributesSequence")

def is_multiframe(header: Dataset) -> bool:
    return "PerFrameFunctionalGroupsSequence" in header or "SharedFunctionalGroupsSequence" in header


def frame_headers(header: Dataset) -> list[Dataset]:
    """One header per frame of an enhanced (functional-group) instance, ``[frame 1, frame 2, ...]``.

    Each is the top-level header without the functional-group sequences, plus the frame's attributes from the
    shared then per-frame groups (per-frame wins): ImagePositionPatient, ImageOrientationPatient, PixelSpacing,
    SliceThickness, RescaleSlope/Intercept, RepetitionTime, EchoTime (from EffectiveEchoTime), InversionTime
    (first of InversionTimes). Where the classic attributes are absent it also sets ScanningSequence (from
    EchoPulseSequence, InversionRecovery, EchoPlanarPulseSequence) and ContrastBolusAgent (from
    ContrastBolusAgentSequence), so selection rules written for classic MR headers apply. Legacy Converted Enhanced
    images also give back the standard attributes of their Unassigned Shared / Per-Frame Converted Attributes
    sequences (where the header does not already hold them).

    Every header holds ReferencedFrameNumber (0008,1160): the frame's number (1-based) in this SOP instance, which is
    how the SEG and RTSTRUCT writers reference that frame. SOPInstanceUID stays the instance's.
    """
    shared_seq = header.get("SharedFunctionalGroupsSequence") or []
    shared = shared_seq[0] if len(shared_seq) else Dataset()
    per_frame = header.get("PerFrameFunctionalGroupsSequence") or []
    count = int(header.get("NumberOfFrames", 0) or 0) or max(len(per_frame), 1)
    base = Dataset()
    for elem in header:
        if elem.keyword not in _SPLIT_AWAY:
            base.add(elem)
    out: list[Dataset] = []
    for f in range(count):
        ds = Dataset()
        for elem in base:
            ds.add(copy.deepcopy(elem))  # each frame header owns its elements: changing one never changes another
        ds.file_meta = getattr(header, "file_meta", None) or FileMetaDataset()
        groups = (shared, per_frame[f] if f < len(per_frame) else Dataset())
        for group in groups:
            _copy_frame_group(group, ds)
        for group in reversed(groups):  # per-frame before shared: the first value set wins
            _copy_unassigned(group, ds)
        _classic_mr_attributes(ds)
        ds.ReferencedFrameNumber = f + 1
        out.append(ds)
    return out


def _copy_unassigned(group: Dataset, ds: Dataset) -> None:
    for keyword in _UNASSIGNED:
        item = _first_item(group, keyword)
        if item is None:
            continue
        for elem in item:
            if not elem.tag.is_private and elem.keyword and elem.tag not in ds:
                ds.add(copy.deepcopy(elem))


def _copy_frame_group(group: Dataset, ds: Dataset) -> None:
    for seq_keyword, keywords in _FRAME_GROUPS.items():
        item = _first_item(group, seq_keyword)
        if item is None:
            continue
        for keyword in keywords:
            if keyword in item:
                ds[keyword] = copy.deepcopy(item[keyword])
    echo = _first_item(group, "MREchoSequence")
    if echo is not None and echo.get("EffectiveEchoTime") is not None:
        ds.EchoTime = round(float(echo.EffectiveEchoTime), 6)
    modifier = _first_item(group, "MRModifierSequence")
    if modifier is not None and modifier.get("InversionTimes"):
        times = modifier.InversionTimes
        ds.InversionTime = round(float(times[0] if isinstance(times, Sequence) else times), 6)


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    return seq[0] if seq is not None and len(seq) else None


def _classic_mr_attributes(ds: Dataset) -> None:
    if "ScanningSequence" not in ds:
        codes = {"SPIN": ["SE"], "GRADIENT": ["GR"], "BOTH": ["SE", "GR"]}.get(str(ds.get("EchoPulseSequence", "")),
                                                                             [])
        if str(ds.get("InversionRecovery", "")).upper() == "YES":
            codes.append("IR")
        if str(ds.get("EchoPlanarPulseSequence", "")).upper() == "YES":
            codes.append("EP")
        if codes:
            ds.ScanningSequence = codes if len(codes) > 1 else codes[0]
    agent = _first_item(ds, "ContrastBolusAgentSequence")
    administered = str(ds.get("ContrastBolusAgentAdministered", "YES")).upper()
    if not ds.get("ContrastBolusAgent") and agent is not None and administered == "YES":
        ds.ContrastBolusAgent = str(agent.get("CodeMeaning", "") or "recorded")[:64]
