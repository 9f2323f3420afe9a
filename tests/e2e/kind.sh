#!/usr/bin/env bash
# End-to-end test of the operator on a real Kubernetes cluster (kind). Opt-in: it needs a
# Docker engine, kind, kubectl and helm, and takes 10-20 minutes. `make test` does not run it,
# and it has never run on the development machines, which have no Docker engine: only
# `bash -n` and shellcheck check it there (tests/test_chart.py).
#
# What it does:
#   1. creates a kind cluster (1 control plane, 3 workers: the production example wants one
#      node pod per Kubernetes node);
#   2. builds the image from the repository's Dockerfile under the name the chart and the
#      KVCluster defaults use (ghcr.io/kvcluster/kvcluster:<appVersion>) and loads it into kind;
#   3. helm-installs the operator (charts/kvcluster-operator) watching namespace $NAMESPACE;
#   4. applies every example of manifests/examples/ there and waits until each is Ready;
#   5. runs a writer pod against the production example (semi-sync) through its sentinel
#      Service with redis-py's Sentinel client, and while it writes:
#      - kills the leader pod (force delete, no grace period) and waits for the failover;
#      - rolls the cluster to a new image tag and waits until every pod runs it;
#   6. stops the writer, which reads every acknowledged key back: the test fails if any
#      acknowledged write is missing, or if more than one pod is labelled leader.
#
# Usage: tests/e2e/kind.sh
# Environment: CLUSTER_NAME (kvcluster-e2e), NAMESPACE (e2e), KEEP_CLUSTER=1 (leave the
# cluster running afterwards), WAIT_SECONDS (600, per step), KIND, KUBECTL, HELM, DOCKER
# (the commands; HELM defaults to .tools/bin/helm when present).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER_NAME=${CLUSTER_NAME:-kvcluster-e2e}
NAMESPACE=${NAMESPACE:-e2e}
OPERATOR_NAMESPACE=kvcluster-system
WAIT_SECONDS=${WAIT_SECONDS:-600}
KIND=${KIND:-kind}
KUBECTL=${KUBECTL:-kubectl}
DOCKER=${DOCKER:-docker}
if [[ -z ${HELM:-} && -x $REPO/.tools/bin/helm ]]; then
    HELM=$REPO/.tools/bin/helm
fi
HELM=${HELM:-helm}

APP_VERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO/charts/kvcluster-operator/Chart.yaml")
IMAGE_REPOSITORY=ghcr.io/kvcluster/kvcluster
IMAGE=$IMAGE_REPOSITORY:$APP_VERSION
UPGRADE_TAG=$APP_VERSION-e2e-upgrade
PRODUCTION=orders # metadata.name of manifests/examples/production.yaml
WRITER=e2e-writer

log() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() {
    log "FAILED: $*"
    exit 1
}
kube() { "$KUBECTL" --context "kind-$CLUSTER_NAME" "$@"; }

# wait_for DESCRIPTION COMMAND...: run COMMAND every 2 s until it succeeds, for WAIT_SECONDS.
wait_for() {
    local description=$1
    shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    log "waiting: $description"
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            fail "timed out after ${WAIT_SECONDS}s: $description"
        fi
        sleep 2
    done
    log "done: $description"
}

diagnostics() {
    log "diagnostics:"
    kube get kvclusters,pods,statefulsets,services,pvc -A -o wide || true
    kube -n "$NAMESPACE" describe kvclusters || true
    kube -n "$NAMESPACE" get events --sort-by=.lastTimestamp || true
    kube -n "$OPERATOR_NAMESPACE" logs deployment/kvcluster-operator --tail=200 || true
    kube -n "$NAMESPACE" logs "$WRITER" --tail=50 || true
}

cleanup() {
    local status=$?
    if ((status != 0)); then
        diagnostics
    fi
    if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
        log "keeping cluster $CLUSTER_NAME (kind delete cluster --name $CLUSTER_NAME)"
    else
        "$KIND" delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
    fi
    exit "$status"
}

require_tools() {
    local tool
    for tool in "$DOCKER" "$KIND" "$KUBECTL" "$HELM"; do
        command -v "$tool" >/dev/null || fail "$tool is needed (Docker, kind, kubectl and helm: see the header)"
    done
    "$DOCKER" info >/dev/null 2>&1 || fail "no Docker engine answers ($DOCKER info failed)"
    [[ -n $APP_VERSION ]] || fail "no appVersion in charts/kvcluster-operator/Chart.yaml"
}

create_cluster() {
    log "creating kind cluster $CLUSTER_NAME"
    "$KIND" create cluster --name "$CLUSTER_NAME" --wait 180s --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
  - role: worker
YAML
}

build_and_load_image() {
    log "building $IMAGE from $REPO/Dockerfile"
    "$DOCKER" build --build-arg "SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 0)" \
        --tag "$IMAGE" "$REPO"
    # The rolling upgrade's "new version": the same content under another tag is a new image
    # reference, so the pods' revision changes and the operator rolls them.
    "$DOCKER" tag "$IMAGE" "$IMAGE_REPOSITORY:$UPGRADE_TAG"
    "$KIND" load docker-image --name "$CLUSTER_NAME" "$IMAGE" "$IMAGE_REPOSITORY:$UPGRADE_TAG"
}

install_operator() {
    kube create namespace "$NAMESPACE"
    log "helm install kvcluster-operator (watching $NAMESPACE)"
    "$HELM" --kube-context "kind-$CLUSTER_NAME" install kvcluster-operator "$REPO/charts/kvcluster-operator" \
        --namespace "$OPERATOR_NAMESPACE" --create-namespace \
        --set watch.namespace="$NAMESPACE" \
        --wait --timeout "${WAIT_SECONDS}s"
}

kvcluster_ready() {
    [[ $(kube -n "$NAMESPACE" get kvcluster "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

apply_examples() {
    # production.yaml reads its password from a Secret of your own.
    kube -n "$NAMESPACE" create secret generic orders-redis-password \
        --from-literal=password="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    local example name
    for example in "$REPO"/manifests/examples/*.yaml; do
        log "applying $(basename "$example")"
        kube -n "$NAMESPACE" apply -f "$example"
    done
    for example in "$REPO"/manifests/examples/*.yaml; do
        name=$(kube -n "$NAMESPACE" get -f "$example" -o jsonpath='{.metadata.name}')
        wait_for "KVCluster $name Ready" kvcluster_ready "$name"
    done
}

leader_of() {
    kube -n "$NAMESPACE" get kvcluster "$1" -o jsonpath='{.status.leader}'
}

leader_label_count() {
    kube -n "$NAMESPACE" get pods -l "app.kubernetes.io/instance=$1,kvcluster.io/role=leader" -o name | grep -c .
}

one_leader_label() {
    [[ $(leader_label_count "$1") == 1 ]]
}

leader_is_not() {
    local leader
    leader=$(leader_of "$1")
    [[ -n $leader && $leader != "$2" ]]
}

pod_is_replica() {
    [[ $(kube -n "$NAMESPACE" get pod "$1" -o jsonpath='{.metadata.labels.kvcluster\.io/role}') == replica ]]
}

pod_ready() {
    [[ $(kube -n "$NAMESPACE" get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

start_writer() {
    log "starting the writer against $PRODUCTION (semi-sync)"
    kube -n "$NAMESPACE" create configmap "$WRITER" --from-literal=writer.py="$(writer_script)"
    kube -n "$NAMESPACE" apply -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $WRITER
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: writer
      image: $IMAGE
      imagePullPolicy: IfNotPresent
      command: [python, /scripts/writer.py]
      env:
        - {name: SENTINEL_HOST, value: $PRODUCTION}
        - {name: GROUP, value: mymaster}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: orders-redis-password, key: password}}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: scripts, mountPath: /scripts}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: scripts
      configMap: {name: $WRITER}
    - name: tmp
      emptyDir: {}
YAML
    wait_for "writer running" pod_ready "$WRITER"
    wait_for "writer has acknowledged writes" writer_has_acknowledged
}

writer_has_acknowledged() {
    kube -n "$NAMESPACE" logs "$WRITER" | grep -q '"acknowledged": [1-9]'
}

# The client: SET e2e:<i> <i> through the leader the sentinels name, as fast as it can, counting
# a write as acknowledged only when the leader answered OK; errors (failover, fencing, semi-sync
# timeouts) are retried with the next key. On /tmp/stop it reads every acknowledged key back.
writer_script() {
    cat <<'PYTHON'
import json, os, sys, time
import redis
from redis.sentinel import Sentinel

password = os.environ.get("PASSWORD") or None
sentinel = Sentinel(
    [(os.environ["SENTINEL_HOST"], int(os.environ.get("SENTINEL_PORT", "26379")))],
    socket_timeout=2,
    sentinel_kwargs={"password": password, "socket_timeout": 2},
    password=password,
)
leader = sentinel.master_for(os.environ["GROUP"], socket_timeout=3)

def report(**fields):
    print(json.dumps(fields), flush=True)

acknowledged, attempts, errors, last_report = [], 0, 0, 0.0
stop_file = os.environ.get("STOP_FILE", "/tmp/stop")
while not os.path.exists(stop_file):
    key = attempts
    attempts += 1
    try:
        if leader.set(f"e2e:{key}", str(key)):
            acknowledged.append(key)
    except redis.RedisError as error:
        errors += 1
        report(error=repr(error), at=key)
        time.sleep(0.2)
    if time.monotonic() - last_report > 5:
        last_report = time.monotonic()
        report(attempts=attempts, acknowledged=len(acknowledged), errors=errors)

def read(keys):
    deadline = time.monotonic() + 120
    while True:
        try:
            return leader.mget([f"e2e:{k}" for k in keys])
        except redis.RedisError as error:
            if time.monotonic() > deadline:
                raise
            report(error=repr(error), reading=True)
            time.sleep(1)

lost = []
for start in range(0, len(acknowledged), 1000):
    batch = acknowledged[start : start + 1000]
    for key, value in zip(batch, read(batch)):
        if value != str(key).encode():
            lost.append(key)
report(done=True, attempts=attempts, acknowledged=len(acknowledged), errors=errors, lost=len(lost), first_lost=lost[:20])
sys.exit(1 if lost else 0)
PYTHON
}

writer_finished() {
    local phase
    phase=$(kube -n "$NAMESPACE" get pod "$WRITER" -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]]
}

kill_leader() {
    local leader
    leader=$(leader_of "$PRODUCTION")
    [[ -n $leader ]] || fail "$PRODUCTION reports no leader"
    log "killing the leader pod $leader (no grace period)"
    kube -n "$NAMESPACE" delete pod "$leader" --grace-period=0 --force --wait=false
    wait_for "a new leader other than $leader" leader_is_not "$PRODUCTION" "$leader"
    wait_for "one pod labelled leader" one_leader_label "$PRODUCTION"
    wait_for "$leader back and ready" pod_ready "$leader"
    wait_for "$leader labelled replica (restarts do not make leaders)" pod_is_replica "$leader"
    wait_for "KVCluster $PRODUCTION Ready again" kvcluster_ready "$PRODUCTION"
    log "leader after the kill: $(leader_of "$PRODUCTION")"
}

node_pods_run() {
    local images
    images=$(kube -n "$NAMESPACE" get pods -l "app.kubernetes.io/instance=$PRODUCTION,app.kubernetes.io/component=node" \
        -o jsonpath='{range .items[*]}{.spec.containers[0].image}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
    [[ -n $images ]] && ! grep -v -x "$1 True" <<<"$images"
}

not_upgrading() {
    [[ $(kube -n "$NAMESPACE" get kvcluster "$PRODUCTION" -o jsonpath='{.status.conditions[?(@.type=="Upgrading")].status}') != True ]]
}

rolling_upgrade() {
    log "rolling $PRODUCTION to $IMAGE_REPOSITORY:$UPGRADE_TAG"
    kube -n "$NAMESPACE" patch kvcluster "$PRODUCTION" --type merge -p "{\"spec\":{\"version\":\"$UPGRADE_TAG\"}}"
    wait_for "every node pod runs $UPGRADE_TAG and is ready" node_pods_run "$IMAGE_REPOSITORY:$UPGRADE_TAG"
    wait_for "the rollout finished" not_upgrading
    wait_for "KVCluster $PRODUCTION Ready after the upgrade" kvcluster_ready "$PRODUCTION"
    wait_for "one pod labelled leader" one_leader_label "$PRODUCTION"
}

stop_writer_and_check() {
    log "stopping the writer; it reads every acknowledged key back"
    kube -n "$NAMESPACE" exec "$WRITER" -- touch /tmp/stop
    wait_for "writer finished" writer_finished
    local summary
    summary=$(kube -n "$NAMESPACE" logs "$WRITER" | grep '"done": true' || true)
    log "writer: $summary"
    [[ $(kube -n "$NAMESPACE" get pod "$WRITER" -o jsonpath='{.status.phase}') == Succeeded ]] ||
        fail "acknowledged writes were lost (or the writer crashed): $summary"
    grep -q '"lost": 0' <<<"$summary" || fail "the writer did not report 0 lost writes: $summary"
}

main() {
    require_tools
    trap cleanup EXIT
    create_cluster
    build_and_load_image
    install_operator
    apply_examples
    one_leader_label "$PRODUCTION" || fail "$PRODUCTION should have exactly one pod labelled leader"
    start_writer
    kill_leader
    rolling_upgrade
    stop_writer_and_check
    log "PASSED: failover and rolling upgrade of $PRODUCTION with no acknowledged write lost"
}

main "$@"
