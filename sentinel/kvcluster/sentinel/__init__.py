"""The sentinel (``kvcluster sentinel``): health checks, quorum, failover with fencing epochs, discovery.

``core`` is the sans-I/O failover logic, ``server`` its asyncio shell; see docs/architecture.md.
"""
