"""The Kubernetes operator (``kvcluster operator``). Not built yet.

Imported as ``kvcluster.operator``; the top-level ``operator/`` directory is a
source root, not a package, so the standard library's ``operator`` is never shadowed.
"""
