"""Labyard: a self-hosted GPU training platform."""

__version__ = "0.1.0"
