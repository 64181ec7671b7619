"""Which GTV model runs: the richest channel configuration the study supports.

Pre-operative protocols vary: T1 post-contrast with FLAIR is common, T1c alone happens, and a FLAIR may lie in
another frame of reference (not registered to T1c). A models folder may hold one GTV bundle per channel
configuration (``preprocessing.channels``, e.g. ``[T1c, FLAIR]`` and ``[T1c]``); the app tries them richest first
(most channels) and runs the first whose every channel finds a series in the study, in T1c's frame of reference
(series selection never pairs series of different frames). Why each richer configuration was passed over is logged
and reported. T1c is required by every configuration: without a post-contrast T1 there is no GTV, and the error says
so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from operators.core.dicom.series import Study
from operators.core.errors import InputDataError, SeriesSelectionError
from operators.core.model.spec import ModelSpec
from operators.core.selection.series import assign_series
from operators.core.selection.study import choose_study

logger = logging.getLogger(__name__)
REQUIRED = "T1c"


@dataclass(frozen=True)
class Configuration:
    """Attributes:
    spec: the GTV bundle chosen.
    study: the study to contour (headers only).
    passed_over: ``(channels, why)`` of each richer configuration the study does not support.
    """

    spec: ModelSpec
    study: Study
    passed_over: tuple[tuple[tuple[str, ...], str], ...] = ()

    def decision(self) -> dict:
        """For the report: the channels used, the model and why richer configurations were not."""
        return {"channels": list(self.spec.preprocessing.channels), "model": self.spec.identity(),
                "passed_over": [{"channels": list(c), "why": why} for c, why in self.passed_over]}


def by_richness(specs: Sequence[ModelSpec]) -> list[ModelSpec]:
    """GTV bundles richest first (more channels first; ties in the given order)."""
    return sorted(specs, key=lambda s: -len(s.preprocessing.channels))


def choose_configuration(studies: Sequence[Study], specs: Sequence[ModelSpec], rules: Mapping[str, Any]
                         ) -> Configuration:
    """The richest configuration the input supports (see the module docstring).

    Raises:
        SeriesSelectionError: no configuration is supported; when the study has no T1 post-contrast series the
            message says that T1c is required, then why its selection failed.
        InputDataError: the input holds no usable study (as :func:`operators.core.selection.study.choose_study`).
    """
    passed: list[tuple[tuple[str, ...], str]] = []
    last: Exception | None = None
    ordered = by_richness(specs)
    for spec in ordered:
        channels = tuple(spec.preprocessing.channels)
        try:
            study = choose_study(studies, channels=channels, rules=rules)
            assign_series(study, channels, rules)
        except (SeriesSelectionError, InputDataError) as e:
            passed.append((channels, str(e).split("\n")[0]))
            last = e
            continue
        for c, why in passed:
            logger.warning("channels %s not used: %s", "+".join(c), why)
        if passed:
            logger.warning("contouring with %s (%s %s), the richest configuration this study supports",
                           "+".join(channels), spec.name, spec.version)
        return Configuration(spec=spec, study=study, passed_over=tuple(passed))
    if isinstance(last, SeriesSelectionError) and f"channel '{REQUIRED}'" in str(last):
        raise SeriesSelectionError(f"the study has no usable T1 post-contrast series: {REQUIRED} is required by "
                                   f"every model (without a post-contrast T1 there is no GTV). {last}") from last
    assert last is not None
    raise last
