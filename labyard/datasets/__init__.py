"""Datasets: uploads, archives, public read-only datasets, the file browser."""
