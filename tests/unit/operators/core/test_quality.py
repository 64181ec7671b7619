"""Quality verdict logic: limits from the model's metadata, flags and verdict from signals, the picture's slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from operators.core.errors import ModelSpecError
from operators.core.model.spec import parse_metadata
from operators.core.steps.quality import QualityLimits, edge_fraction, judge, seg_description, verdict_fields
from operators.core.writers.report import tumour_slices

REPO = Path(__file__).resolve().parents[4]
GOOD = {"inplane_spacing_mm": 0.69, "slice_spacing_mm": 6.5, "contrast_agent_recorded": True, "brain_cm3": 1674.5,
        "brain_edge_fraction": 0.004, "registration_offset_mm_FLAIR": 0.0, "gtv_cm3": 50.1, "gtv_components": 1,
        "gtv_surface_fraction": 0.07, "gtv_enhancement": 1.52, "unsure_fraction": 0.2}


def test_the_bundled_model_carries_its_limits_and_unknown_ones_are_refused():
    meta = json.loads((REPO / "models" / "glioblastoma_gtv" / "configs" / "metadata.json").read_text())
    spec = parse_metadata(meta, root=REPO / "models" / "glioblastoma_gtv")
    assert spec.quality == QualityLimits.from_dict(meta["quality"])
    with pytest.raises(ModelSpecError, match=r"quality: unknown quality limit\(s\) \['slice_mm'\]"):
        parse_metadata({**meta, "quality": {"slice_mm": 3}}, root=spec.root)


@pytest.mark.parametrize("change, code, verdict", [
    ({}, None, "ok"),
    ({"registration_offset_mm_FLAIR": 10.5}, "MISREGISTERED_FLAIR", "unreliable"),
    ({"contrast_agent_recorded": False}, "NO_CONTRAST_RECORDED", "review"),
    ({"brain_edge_fraction": 0.55}, "BRAIN_AT_FOV_EDGE", "review"),
    ({"gtv_components": 2}, "GTV_COMPONENTS", "review"),
    ({"gtv_cm3": 0.0, "gtv_components": 0, "unsure_fraction": None}, "NO_GTV", "review"),
    ({"contrast_agent_recorded": None, "brain_cm3": None}, None, "ok"),  # not measurable: no flag
])
def test_flags_and_verdict_follow_the_limits(change, code, verdict):
    quality = judge({**GOOD, **change}, QualityLimits())
    assert quality.verdict == verdict
    assert [f.code for f in quality.flags] == ([code] if code else [])
    assert set(quality.to_dict()) == {"verdict", "flags"}


def test_a_fallback_model_flags_every_contour():
    """The T1c-alone model (run when a study has no usable FLAIR) is less accurate than the T1c + FLAIR one: its
    metadata says so and every contour it draws is flagged for review, however good its other signals look."""
    bundled = {name: json.loads((REPO / "models" / name / "configs" / "metadata.json").read_text())["quality"]
               for name in ("glioblastoma_gtv", "glioblastoma_gtv_t1c")}
    assert QualityLimits.from_dict(bundled["glioblastoma_gtv"]).fallback == ""
    limits = QualityLimits.from_dict(bundled["glioblastoma_gtv_t1c"])
    assert "FLAIR" in limits.fallback
    quality = judge(GOOD, limits)
    assert quality.verdict == "review"
    assert [(f.code, f.message) for f in quality.flags] == [("FALLBACK_MODEL", limits.fallback)]
    assert "FALLBACK_MODEL" in verdict_fields(quality)["verdict_note"]


def test_dicom_descriptions_fit_their_vr():
    bad = judge({**GOOD, "registration_offset_mm_FLAIR": 9.0, "gtv_components": 3}, QualityLimits())
    assert seg_description(bad) == "GTV auto-segmentation UNRELIABLE (UNAPPROVED)"
    assert len(seg_description(bad)) <= 64
    assert verdict_fields(bad)["verdict"] == "UNRELIABLE" and "MISREGISTERED_FLAIR" in verdict_fields(bad)[
        "verdict_note"]
    assert verdict_fields(judge(GOOD, QualityLimits())) == {}


def test_edge_fraction_sees_a_mask_cut_by_the_field_of_view():
    ball = np.zeros((40, 40, 40), bool)
    z, y, x = np.ogrid[:40, :40, :40]
    ball[(z - 20) ** 2 + (y - 20) ** 2 + (x - 20) ** 2 <= 15 ** 2] = True
    assert edge_fraction(ball) == 0.0
    assert edge_fraction(ball[:20]) > 0.2


def test_review_slices_include_the_largest_extent_and_a_far_part():
    mask = np.zeros((60, 20, 20), bool)
    mask[10:30, 5:15, 5:15] = True
    mask[20, 2:18, 2:18] = True  # the largest cross-section
    mask[55, 8:10, 8:10] = True  # a far part
    shown = tumour_slices(mask, max_panels=8)
    assert 20 in shown and 55 in shown and len(shown) == 8
