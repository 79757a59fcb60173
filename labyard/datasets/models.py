"""Tables of the datasets domain."""
