"""Weights: a finished job's exported model, registered, shared and fine-tuned from."""
