"""Operators of the GTV contouring application.

``operators.core`` holds the pure functions (no Holoscan import); each ``operators/<name>_operator.py`` module is a
thin MONAI Deploy SDK operator shell over one core function.
"""
