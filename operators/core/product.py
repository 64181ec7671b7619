"""Product identity written into every output object and report."""

from __future__ import annotations

MANUFACTURER = "GBM-GTV Contouring Project"
PRODUCT_NAME = "GBM GTV auto-contouring MAP"
SOFTWARE_VERSION = "0.1.0"
# Root for UIDs this product creates (pydicom's prefix; a hospital deployment may set its own org root).
UID_PREFIX = "1.2.826.0.1.3680043.8.498."
# Fixed series numbers so repeated runs and reviewers see stable numbers (never random).
SEG_SERIES_NUMBER = 9001
RTSTRUCT_SERIES_NUMBER = 9002
