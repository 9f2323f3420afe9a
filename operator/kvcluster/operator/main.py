"""``kvcluster operator``: run the kopf operator on our handlers (what ``kopf run`` would do on the module).

Watches one namespace (``--namespace``, default: the operator pod's own namespace, else ``default``) or
all of them (``--all-namespaces``). Several replicas of the operator elect one active instance through
kopf peering (a ``KopfPeering`` object, or a ``ClusterKopfPeering`` with ``--all-namespaces``, named by
``--peering``): each replica takes a random priority, the highest acts and the others wait until its
keep-alive expires; ``--standalone`` skips peering for a single instance.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
from pathlib import Path

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_namespace() -> str:
    env = os.environ.get("KVCLUSTER_OPERATOR_NAMESPACE")
    if env:
        return env
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kvcluster operator",
        description=(
            "Run the KVCluster operator (kopf): reconcile KVCluster resources into StatefulSets, Services and "
            "the rest, mirror the sentinels' leader into pod labels and status, and order rolling upgrades."
        ),
        epilog=(
            "Environment: KVCLUSTER_OPERATOR_NAMESPACE (the --namespace default), KVCLUSTER_OPERATOR_SENTINELS "
            "(host:port,... to reach the sentinels at, for runs outside the cluster), "
            "KVCLUSTER_OPERATOR_STEP_TIMEOUT (seconds a rolling-upgrade step may take before the rollout pauses, "
            "default 600), KVCLUSTER_OPERATOR_INTERVAL (seconds between observations, default 1.5). Credentials: "
            "the pod's service account, else the kubeconfig ($KUBECONFIG or ~/.kube/config)."
        ),
        allow_abbrev=False,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", action="append", help="watch this namespace (repeatable)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (cluster-wide RBAC)")
    p.add_argument("--standalone", action="store_true", help="no peering: run as the only operator instance")
    p.add_argument(
        "--peering", default="kvcluster-operator", help="the peering object's name (default: kvcluster-operator)"
    )
    p.add_argument(
        "--priority",
        type=int,
        help=(
            "peering priority: the highest runs, the others wait (default: random, so of several replicas exactly "
            "one acts; kopf pauses all operators of equal priority)"
        ),
    )
    p.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz (off by default)"
    )
    p.add_argument(
        "--no-scanning",
        action="store_true",
        help="with --all-namespaces, do not watch CRDs and namespaces (for API emulators)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not ns.verbose:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    import kopf
    from kvcluster.operator.handlers import OperatorOptions, build_registry

    options = OperatorOptions.from_env(os.environ)
    # Scanning (watching CRDs and namespaces) is only needed to follow every namespace; a
    # namespaced operator's Role cannot list namespaces, and kopf would retry that for a minute.
    options.scanning = ns.all_namespaces and not ns.no_scanning
    registry = build_registry(options)
    namespaces = [] if ns.all_namespaces else (ns.namespace or [default_namespace()])
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await kopf.operator(
            registry=registry,
            clusterwide=ns.all_namespaces,
            namespaces=namespaces,
            standalone=True if ns.standalone else None,
            # Naming the peering makes it mandatory: replicas wait for the KopfPeering object (the chart's).
            peering_name=None if ns.standalone else ns.peering,
            priority=ns.priority if ns.priority is not None else random.randint(1, 2**31 - 1),
            liveness_endpoint=ns.liveness,
            stop_flag=stop,
        )

    asyncio.run(run())
    return 0
