"""The pipeline's steps on volumes: brain extraction, preprocessing, probabilities, post-processing, the quality
verdict."""
