"""Jobs and sweeps: the scheduler, executors, logs, metrics and progress."""
