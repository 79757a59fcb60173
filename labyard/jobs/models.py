"""Tables of the jobs domain."""
