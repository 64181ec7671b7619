"""GBM GTV auto-contouring: the MONAI Deploy application (graph, configuration, entry point)."""
