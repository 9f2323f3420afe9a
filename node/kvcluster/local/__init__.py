"""The local cluster: ``kvcluster up`` and the commands that watch and poke it.

``kvcluster up`` runs the same topology as a Kubernetes install (one leader, replicas,
sentinels) as child processes of the real ``kvcluster node`` / ``kvcluster sentinel``
programs. The pieces:

- :mod:`.plan` — the cluster's shape (ports, directories, command lines), pure;
- :mod:`.policy` — which child to restart when, and the stop order, pure;
- :mod:`.status` — reading a cluster's state from its sentinels and nodes, and rendering it;
- :mod:`.supervisor` — the asyncio shell that starts, watches, restarts and stops the children;
- :mod:`.commands` — ``kvcluster up``, ``status``, ``failover``, ``chaos``.
"""
