#!/usr/bin/env bash
# Builds the local control plane's binaries from their published Go modules and caches them
# under .tools/<name>-<version>/. A cached tool is not rebuilt, so a warm run takes seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools_dir=${TOOLS_DIR:-$root/.tools}
mkdir -p "$tools_dir"
# Work directories of this run only: runs from other checkouts share .tools/ and must not remove
# each other's builds in progress.
build_dir=$(mktemp -d "$tools_dir/build.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
GO_INSTALL_LDFLAGS=""

# shellcheck source=lock.sh
source "$root/tools/lock.sh"
log() { printf '[tools] %s\n' "$*" >&2; }

# Prints "module version" for each replace in a module's go.mod that points at a local directory,
# mapped to the same published version: the staging/sibling modules that make `go install` fail.
local_replaces() {
  local gomod=$1 version=$2
  go mod edit -json "$gomod" | python3 -c '
import json, sys
version = sys.argv[1]
for r in json.load(sys.stdin).get("Replace") or []:
    new = r["New"]["Path"]
    if new.startswith(".") and "FORBIDDEN" not in new:
        print(r["Old"]["Path"], version)
' "$version"
}

# Prints one field (Dir, GoMod) of `go mod download -json MODULE@VERSION`, downloading it if needed.
go_module_field() {
  go mod download -json "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Makes a throwaway wrapper module that requires $module@$version with its local replaces pinned.
wrapper_module() {
  local dir=$1 module=$2 version=$3 sibling_version=$4
  rm -rf "$dir" && mkdir -p "$dir"
  local gomod
  gomod=$(go_module_field GoMod "$module@$version")
  (
    cd "$dir"
    go mod init llmops.dev/toolbuild >/dev/null 2>&1
    while read -r mod ver; do
      go mod edit -replace "$mod=$mod@$ver"
    done < <(local_replaces "$gomod" "$sibling_version")
    go mod edit -require "$module@$version"
  )
}

build_kubernetes() {
  local out=$tools_dir/kubernetes-$KUBERNETES_VERSION
  if [[ -x $out/kube-apiserver && -x $out/kube-controller-manager && -x $out/kube-scheduler && -x $out/kubectl ]]; then
    log "kubernetes $KUBERNETES_VERSION cached"; return
  fi
  log "building kubernetes $KUBERNETES_VERSION (several minutes on a cold machine)"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local staging_version=v0.${KUBERNETES_VERSION#v1.}
  local work=$build_dir/kubernetes-$KUBERNETES_VERSION
  wrapper_module "$work" k8s.io/kubernetes "$KUBERNETES_VERSION" "$staging_version"
  local ldflags="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "$work"
    local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl) pkgs=() c
    for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    go get "${pkgs[@]/%/@$KUBERNETES_VERSION}" >/dev/null
    mkdir -p "$out.tmp"
    go build -tags selinux,notest -trimpath -ldflags "-s -w $ldflags" -o "$out.tmp/" "${pkgs[@]}"
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_etcd() {
  local out=$tools_dir/etcd-$ETCD_VERSION
  if [[ -x $out/etcd ]]; then log "etcd $ETCD_VERSION cached"; return; fi
  log "building etcd $ETCD_VERSION"
  local work=$build_dir/etcd-$ETCD_VERSION
  wrapper_module "$work" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
  (
    cd "$work"
    go get go.etcd.io/etcd/server/v3@"$ETCD_VERSION" >/dev/null
    mkdir -p "$out.tmp"
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_go_install() {
  local name=$1 version=$2; shift 2
  local out=$tools_dir/$name-$version bin
  local missing=0
  for pkg in "$@"; do bin=${pkg##*/}; [[ -x $out/$bin ]] || missing=1; done
  if (( ! missing )); then log "$name $version cached"; return; fi
  log "building $name $version"
  mkdir -p "$out"
  for pkg in "$@"; do GOBIN=$out go install -trimpath -ldflags "-s -w" "$pkg@$version"; done
}

fetch_prometheus() {
  local out=$tools_dir/prometheus-$PROMETHEUS_VERSION
  if [[ -x $out/prometheus ]]; then log "prometheus $PROMETHEUS_VERSION cached"; return; fi
  log "fetching prometheus $PROMETHEUS_VERSION (Debian package, unpacked without installing)"
  local work=$build_dir/prometheus
  rm -rf "$work" && mkdir -p "$work"
  local candidate
  candidate=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [[ $candidate != "$PROMETHEUS_VERSION"* ]]; then
    (apt-get update -qq >/dev/null 2>&1 || true)
    candidate=$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')
  fi
  [[ $candidate == "$PROMETHEUS_VERSION"* ]] || { log "no prometheus $PROMETHEUS_VERSION package (found '$candidate')"; exit 1; }
  (cd "$work" && chmod 777 . && apt-get download -qq "prometheus=$candidate" 2>/dev/null && dpkg-deb -x prometheus_*.deb x)
  mkdir -p "$out.tmp" && cp "$work/x/usr/bin/prometheus" "$work/x/usr/bin/promtool" "$out.tmp/"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Copies files out of a published Go module into .tools/<name>-<version>/ (CRDs the tests apply).
#   fetch_module_files NAME VERSION MODULE SOURCE:TARGET ...
# The first TARGET marks the cache: when it exists, nothing is fetched.
fetch_module_files() {
  local name=$1 version=$2 module=$3; shift 3
  local out=$tools_dir/$name-$version
  if [[ -f $out/${1#*:} ]]; then log "$name $version cached"; return; fi
  log "fetching $name $version from $module"
  local dir pair
  dir=$(go_module_field Dir "$module@$version")
  mkdir -p "$out.tmp"
  for pair in "$@"; do cp "$dir/${pair%%:*}" "$out.tmp/${pair#*:}"; done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Builds one main package of a module that needs no replaces, in a wrapper module, with the
# module's version stamped into VERSION_PKG.GitVersion (else it reports v0.0.0-main).
#   build_wrapped NAME VERSION MODULE PACKAGE VERSION_PKG
build_wrapped() {
  local name=$1 version=$2 module=$3 pkg=$4 version_pkg=$5
  local out=$tools_dir/$name-$version
  if [[ -x $out/$name ]]; then log "$name $version cached"; return; fi
  log "building $name $version"
  local work=$build_dir/$name-$version
  wrapper_module "$work" "$module" "$version" "$version"
  (
    cd "$work"
    go get "$pkg@$version" >/dev/null
    mkdir -p "$out.tmp"
    go build -trimpath -ldflags "-s -w -X $version_pkg.GitVersion=$version" -o "$out.tmp/$name" "$pkg"
  )
  local dir
  dir=$(go_module_field Dir "$module@$version")
  local crd
  for crd in "${@:6}"; do cp "$dir/$crd" "$out.tmp/"; done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Argo Rollouts (the peer of benchmarks/argo_peer.py): its controller built in a wrapper module
# that carries the module's own version-pinned replaces (a dependency's replaces do not apply to
# the module that requires it), version stamped, and its CRDs copied from the module zip.
build_argo_rollouts() {
  local version=$ARGO_ROLLOUTS_VERSION module=github.com/argoproj/argo-rollouts
  local out=$tools_dir/argo-rollouts-$version
  if [[ -x $out/rollouts-controller ]]; then log "argo-rollouts $version cached"; return; fi
  log "building argo-rollouts $version (heavy: one build at a time)"
  local work gomod dir commit
  gomod=$(go_module_field GoMod "$module@$version")
  dir=$(go_module_field Dir "$module@$version")
  commit=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Origin"]["Hash"])')
  # Its own work folder: other checkouts share .tools and remove .tools/build when they finish.
  work=$(mktemp -d "$tools_dir/argo-rollouts-build.XXXXXX")
  (
    cd "$work"
    go mod init llmops.dev/toolbuild >/dev/null 2>&1
    go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if "Version" in r["New"]:
        print(r["Old"]["Path"] + "=" + r["New"]["Path"] + "@" + r["New"]["Version"])
' | while read -r replace; do go mod edit -replace "$replace"; done
    go mod edit -require "$module@$version"
    go get "$module/cmd/rollouts-controller@$version" >/dev/null
    local pkg=$module/utils/version
    mkdir -p "$out.tmp"
    go build -trimpath -o "$out.tmp/rollouts-controller" -ldflags "-s -w -X $pkg.version=${version#v} \
      -X $pkg.gitTag=$version -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean \
      -X $pkg.buildDate=1970-01-01T00:00:00Z" "$module/cmd/rollouts-controller"
  )
  local crd
  for crd in rollout analysis-template analysis-run cluster-analysis-template experiment; do
    cp "$dir/manifests/crds/$crd-crd.yaml" "$out.tmp/"
  done
  rm -rf "$out" "$work" && mv "$out.tmp" "$out"
}

# Builds a module's main package, which needs no version stamp, in a wrapper module: `go install
# pkg@version` refuses modules whose go.mod has replace directives or whose version list it
# cannot read.
#   build_plain NAME VERSION MODULE PACKAGE
build_plain() {
  local name=$1 version=$2 module=$3 pkg=$4
  local out=$tools_dir/$name-$version
  if [[ -x $out/$name ]]; then log "$name $version cached"; return; fi
  hold "$name"
  if [[ -x $out/$name ]]; then log "$name $version cached"; release; return; fi
  log "building $name $version (about 8 minutes on 2 cores)"
  local work=$build_dir/$name-$version
  wrapper_module "$work" "$module" "$version" "$version"
  (
    cd "$work"
    go get "$pkg@$version" >/dev/null
    mkdir -p "$out.tmp"
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/$name" "$pkg"
  )
  rm -rf "$out" && mv "$out.tmp" "$out"
  release
}

# Kueue and JobSet (retraining engines; the Makefile's `tools` names them: each compiles its own
# copy of the Kubernetes client libraries, so they add most of a cold `make tools`),
# llm-d-inference-sim (the Go vLLM imitation with latency and failure injection) and Argo Rollouts
# (a benchmark's peer) are built only when named.
want=${*:-kubernetes etcd kwok helm prometheus gateway-api inference-extension prometheus-operator argocd}
for tool in $want; do
  case $tool in
    kubernetes) build_kubernetes ;;
    etcd) build_etcd ;;
    kwok) build_go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl ;;
    helm) GO_INSTALL_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
            build_go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
    prometheus) fetch_prometheus ;;
    gateway-api)
      crds=config/crd/standard/gateway.networking.k8s.io
      fetch_module_files gateway-api "$GATEWAY_API_VERSION" sigs.k8s.io/gateway-api \
        "${crds}_gatewayclasses.yaml:gatewayclasses.yaml" "${crds}_gateways.yaml:gateways.yaml" \
        "${crds}_httproutes.yaml:httproutes.yaml" "${crds}_referencegrants.yaml:referencegrants.yaml" ;;
    inference-extension)
      crds=config/crd/bases/inference.networking
      fetch_module_files gateway-api-inference-extension "$GATEWAY_API_INFERENCE_EXTENSION_VERSION" \
        sigs.k8s.io/gateway-api-inference-extension \
        "${crds}.k8s.io_inferencepools.yaml:inferencepools.yaml" \
        "${crds}.x-k8s.io_inferencepoolimports.yaml:inferencepoolimports.yaml" ;;
    prometheus-operator)
      crds=example/prometheus-operator-crd/monitoring.coreos.com
      fetch_module_files prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" \
        github.com/prometheus-operator/prometheus-operator \
        "${crds}_servicemonitors.yaml:servicemonitors.yaml" "${crds}_prometheusrules.yaml:prometheusrules.yaml" ;;
    argocd)
      fetch_module_files argocd "$ARGOCD_VERSION" github.com/argoproj/argo-cd/v3 \
        manifests/crds/application-crd.yaml:applications.yaml manifests/crds/appproject-crd.yaml:appprojects.yaml ;;
    kueue)
      crds=config/components/crd/bases/kueue.x-k8s.io
      build_wrapped kueue "$KUEUE_VERSION" sigs.k8s.io/kueue sigs.k8s.io/kueue/cmd/kueue \
        sigs.k8s.io/kueue/pkg/version \
        "${crds}_clusterqueues.yaml" "${crds}_localqueues.yaml" "${crds}_resourceflavors.yaml" \
        "${crds}_workloads.yaml" "${crds}_admissionchecks.yaml" "${crds}_cohorts.yaml" \
        "${crds}_workloadpriorityclasses.yaml" "${crds}_topologies.yaml" \
        "${crds}_provisioningrequestconfigs.yaml" "${crds}_multikueueclusters.yaml" \
        "${crds}_multikueueconfigs.yaml" ;;
    jobset)
      build_wrapped jobset "$JOBSET_VERSION" sigs.k8s.io/jobset sigs.k8s.io/jobset \
        sigs.k8s.io/jobset/pkg/version config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml ;;
    argo-rollouts) build_argo_rollouts ;;
    llm-d-inference-sim)
      build_plain llm-d-inference-sim "$LLM_D_INFERENCE_SIM_VERSION" github.com/llm-d/llm-d-inference-sim \
        github.com/llm-d/llm-d-inference-sim/cmd/llm-d-inference-sim ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
done
log "done"
