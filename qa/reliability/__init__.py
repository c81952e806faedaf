"""Reliability tooling: a `qa serve` child process on loopback, and the soak (`make soak`)."""
