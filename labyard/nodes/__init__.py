"""Nodes: the machines that run jobs (this server, or a cluster's nodes) and their jobs."""
