"""The Kubernetes operator (``kvcluster operator``): reconciles KVCluster resources with kopf.

Modules: ``spec`` (defaults and validation), ``crd`` (the CustomResourceDefinition), ``desired``
(every child object, a pure function), ``observer`` (the sentinels' view mirrored into labels,
status and Events, pure), ``rollout`` (the next rolling-upgrade or scaling step, pure), ``handlers``
(the kopf handlers, thin shells), ``kube`` (a small asyncio Kubernetes API client), ``main`` (the
``kvcluster operator`` command).

Imported as ``kvcluster.operator``; the top-level ``operator/`` directory is a
source root, not a package, so the standard library's ``operator`` is never shadowed.
"""
