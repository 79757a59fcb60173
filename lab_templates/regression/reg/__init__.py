"""The regression fine-tuning template's package (it reuses ``cls``, from classification)."""
