"""User tools that talk to a running cluster: ``kvcluster cli`` and ``kvcluster bench``.

They are clients, not servers: they import nothing from the node's runtime except its command
table (for help and completion), and work against any Redis-compatible server.
"""
