"""Flavors: hardware sizes (GPUs, CPUs, memory) that admins define and jobs ask for."""
