"""Labyard's dataset conversion template: scan, split, resize, class folders or TFRecord."""
