"""The segmentation template's package (reuses the classification template's ``cls``)."""
