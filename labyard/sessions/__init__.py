"""Lab sessions: a lab's JupyterLab (with terminals) run as a job, proxied behind login."""
