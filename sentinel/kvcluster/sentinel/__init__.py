"""The sentinel: health checks, quorum and failover (``kvcluster sentinel``). Not built yet."""
