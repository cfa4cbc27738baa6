#!/usr/bin/env bash
# Validates every shipped Kubernetes manifest offline: checks they are what the code generates,
# renders base and both overlays with kustomize, and validates the result with
# kubernetes-validate --strict (offline schemas) for a current Kubernetes version. Custom
# resources (CloudNativePG Cluster, KEDA ScaledObject) have no bundled schema and are reported
# as warnings; the drift guard (crates/nubo/tests/manifests.rs) checks the fields nubo relies on.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.37.0}"
KUBERNETES_VALIDATE_VERSION="1.37.0"

if ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl (Debian's kubernetes-client) for kustomize"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi
if ! command -v kubernetes-validate >/dev/null 2>&1 \
  || [ "$(kubernetes-validate --version 2>/dev/null | awk '{print $NF}')" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  pip install --quiet --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

echo "== manifests match the code"
cargo run --quiet --bin nubo -- manifests --check

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for target in base overlays/dev overlays/prod; do
  name=${target//\//-}
  # kustomize v5 notes that `bases` and `patchesStrategicMerge` are deprecated; they are kept so
  # kustomize v2 (Debian's kubectl) renders the same objects.
  kubectl kustomize "deploy/kubernetes/$target" >"$out/$name.yaml" 2>"$out/$name.err" || {
    cat "$out/$name.err" >&2
    exit 1
  }
  echo "== $target: $(grep -c '^kind:' "$out/$name.yaml") objects rendered"
done
echo "== kubernetes-validate --strict for Kubernetes $KUBERNETES_VERSION"
kubernetes-validate --strict --quiet -k "$KUBERNETES_VERSION" "$out"/*.yaml
echo "every manifest is valid"
