"""Searches: a sweep whose jobs (trials) Optuna samples and prunes, driven by their metrics."""
