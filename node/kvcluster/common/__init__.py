"""Code shared by node, sentinel and operator: RESP, configuration, logging.

Nothing in here imports from ``kvcluster.node``, ``kvcluster.sentinel`` or
``kvcluster.operator``; they all import from here (no cycles).
"""
