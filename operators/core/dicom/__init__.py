"""DICOM input: scanning a folder and choosing the study, the series and instance types, reading a series into a
volume, and the values copied into the outputs."""
