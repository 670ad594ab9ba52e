#!/usr/bin/env bash
# Builds the local control plane's binaries from their published Go modules and caches them
# under .tools/<name>-<version>/. A cached tool is not rebuilt, so a warm run takes seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/tools/versions.env"
tools_dir=${TOOLS_DIR:-$root/.tools}
mkdir -p "$tools_dir"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
GO_INSTALL_LDFLAGS=""

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

# Makes a throwaway wrapper module that requires $module@$version with its local replaces pinned.
wrapper_module() {
  local dir=$1 module=$2 version=$3 sibling_version=$4
  rm -rf "$dir" && mkdir -p "$dir"
  local gomod
  gomod=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
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
  local work=$tools_dir/build/kubernetes-$KUBERNETES_VERSION
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
  local work=$tools_dir/build/etcd-$ETCD_VERSION
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
  local work=$tools_dir/build/prometheus
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

fetch_gateway_api() {
  local out=$tools_dir/gateway-api-$GATEWAY_API_VERSION
  if [[ -f $out/httproutes.yaml ]]; then log "gateway-api $GATEWAY_API_VERSION CRDs cached"; return; fi
  log "fetching the Gateway API $GATEWAY_API_VERSION CRDs"
  local dir
  dir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$out.tmp"
  for kind in gatewayclasses gateways httproutes referencegrants; do
    cp "$dir/config/crd/standard/gateway.networking.k8s.io_$kind.yaml" "$out.tmp/$kind.yaml"
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

fetch_prometheus_operator_crds() {
  local out=$tools_dir/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION
  if [[ -f $out/servicemonitors.yaml ]]; then log "prometheus-operator $PROMETHEUS_OPERATOR_VERSION CRDs cached"; return; fi
  log "fetching the Prometheus Operator $PROMETHEUS_OPERATOR_VERSION CRDs (ServiceMonitor, PrometheusRule)"
  local dir
  dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$out.tmp"
  for kind in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$out.tmp/$kind.yaml"
  done
  rm -rf "$out" && mv "$out.tmp" "$out"
}

fetch_argocd_crds() {
  local out=$tools_dir/argocd-$ARGOCD_VERSION
  if [[ -f $out/applications.yaml ]]; then log "argocd $ARGOCD_VERSION CRDs cached"; return; fi
  log "fetching the Argo CD $ARGOCD_VERSION CRDs (Application, AppProject)"
  local dir
  dir=$(go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$out.tmp"
  cp "$dir/manifests/crds/application-crd.yaml" "$out.tmp/applications.yaml"
  cp "$dir/manifests/crds/appproject-crd.yaml" "$out.tmp/appprojects.yaml"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

want=${*:-kubernetes etcd kwok helm prometheus gateway-api prometheus-operator argocd}
for tool in $want; do
  case $tool in
    kubernetes) build_kubernetes ;;
    etcd) build_etcd ;;
    kwok) build_go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl ;;
    helm) GO_INSTALL_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
            build_go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm ;;
    prometheus) fetch_prometheus ;;
    gateway-api) fetch_gateway_api ;;
    prometheus-operator) fetch_prometheus_operator_crds ;;
    argocd) fetch_argocd_crds ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
done
rm -rf "$tools_dir/build"
log "done"
