"""The data node: a Redis-compatible server (``kvcluster node``)."""
