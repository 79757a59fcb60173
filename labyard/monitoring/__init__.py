"""Prometheus metrics of the platform (`/metrics`): jobs, queue, GPUs, HTTP, ingestion."""
