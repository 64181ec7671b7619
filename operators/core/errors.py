"""Errors raised on bad input.

Every message names the object at fault (file, series, model folder), the rule that failed, the DICOM keyword and
tag where there is one, the value found and the value expected. Messages never carry patient-identifying values:
series are named by their SeriesInstanceUID and description, files by their path.
"""

from __future__ import annotations


class GtvError(Exception):
    """Base class of every error this product reports to its user."""

    exit_code = 1


class InputDataError(GtvError):
    """The input folder or one of its files cannot be used (empty, unreadable, truncated, not DICOM)."""

    exit_code = 2


class SeriesSelectionError(GtvError):
    """The study does not hold the series the model needs, or holds them ambiguously."""

    exit_code = 3


class GeometryError(GtvError):
    """A series' geometry is inconsistent or cannot be represented (missing slice, mixed orientation, ...)."""

    exit_code = 4


class ModelSpecError(GtvError):
    """A model folder is missing, incomplete, or its files do not match their recorded hash."""

    exit_code = 5


class ConfigError(GtvError):
    """A configuration file or command-line value is invalid."""

    exit_code = 6
