"""The outputs: DICOM-SEG, RTSTRUCT, the review picture and the JSON report."""
