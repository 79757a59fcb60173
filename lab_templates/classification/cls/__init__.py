"""Labyard's image classification template: data, models, training, export."""
