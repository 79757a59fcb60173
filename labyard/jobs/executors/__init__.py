"""Executors: where jobs run (local processes, Docker containers)."""
