"""Pure core of the application: geometry, DICOM I/O, selection, inference, writers. Imports no Holoscan."""
