#!/usr/bin/env bash
# Builds one pinned test-server component into the per-version cache, unless it is there.
# Usage: build.sh kubernetes|kubernetes-node|local-path-provisioner|coredns|etcd|kwok|minio|fake-gcs-server|azurite|elasticsearch|restic|rustic|helm
# Prints the component's cache directory on stdout; build logs go to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${KBACKUP_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kbackup-testenv}"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

need() { command -v "$1" >/dev/null || { echo "missing prerequisite '$1': $2" >&2; exit 1; }; }

component="${1:?usage: build.sh COMPONENT}"
case "$component" in
  kubernetes|kubernetes-node) version=$KUBERNETES_VERSION ;;
  local-path-provisioner) version=$LOCAL_PATH_PROVISIONER_VERSION ;;
  coredns) version=$COREDNS_VERSION ;;
  etcd) version=$ETCD_VERSION ;;
  kwok) version=$KWOK_VERSION ;;
  minio) version=$MINIO_VERSION ;;
  # The patch's checksum in the name: a changed patch is a new build.
  fake-gcs-server) version=$FAKE_GCS_SERVER_VERSION-$(cat "$here"/fake-gcs-server/* | sha256sum | cut -c1-12) ;;
  azurite) version=$AZURITE_VERSION-blob$AZURE_STORAGE_BLOB_VERSION ;;
  elasticsearch) version=$ELASTICSEARCH_VERSION ;;
  restic) version=$RESTIC_VERSION ;;
  rustic) version=$RUSTIC_VERSION ;;
  helm) version=$HELM_VERSION ;;
  *) echo "unknown component '$component'" >&2; exit 2 ;;
esac
dest="$cache_root/$component-$version"
if [[ -f "$dest/.complete" ]]; then echo "$dest"; exit 0; fi
# One build of a component at a time (two `env up` at once wait for each other).
mkdir -p "$cache_root"
exec 9>"$cache_root/$component.lock"
flock 9
if [[ -f "$dest/.complete" ]]; then echo "$dest"; exit 0; fi
rm -rf "$dest.partial" && mkdir -p "$dest.partial/bin"
work="$dest.partial"

# Builds commands of the pinned Kubernetes release (a wrapper module that pins every staging
# module to the same release), with the version stamped as a release build would.
build_kubernetes_commands() {
  need go "install Go >= 1.24 (https://go.dev/doc/install or the golang Debian package)"
  local minor="${version#v1.}"; minor="${minor%%.*}"
  local staging="v0.${version#v1.}"
  mkdir -p "$work/src" && cd "$work/src"
  {
    echo "module kbackup.local/testenv/kubernetes"
    echo "go 1.24"
    echo "godebug default=go1.24"
    echo "require k8s.io/kubernetes $version"
    for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go \
      cloud-provider cluster-bootstrap code-generator component-base component-helpers \
      controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation \
      endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy \
      kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission \
      sample-apiserver sample-cli-plugin sample-controller; do
      echo "replace k8s.io/$m => k8s.io/$m $staging"
    done
  } > go.mod
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  go build -trimpath -ldflags "-s -w$ld" -o "$work/bin/" "$@" >&2
}

build_kubernetes() {
  build_kubernetes_commands k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
}

# The real node's agents (the node's container runtime comes from Debian: containerd, runc).
build_kubernetes-node() {
  build_kubernetes_commands k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
}

build_local-path-provisioner() {
  need go "install Go >= 1.24"
  GOBIN="$work/bin" go install -trimpath -ldflags "-s -w" "github.com/rancher/local-path-provisioner@$version" >&2
}

build_coredns() {
  need go "install Go >= 1.24"
  GOBIN="$work/bin" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$version" >&2
}

build_etcd() {
  need go "install Go >= 1.24"
  mkdir -p "$work/src" && cd "$work/src"
  printf 'module kbackup.local/testenv/etcd\ngo 1.24\n' > go.mod
  go get "go.etcd.io/etcd/server/v3@$version" >&2
  go build -trimpath -ldflags "-s -w" -o "$work/bin/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_kwok() {
  need go "install Go >= 1.24"
  GOBIN="$work/bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$version" >&2
  # The stage definitions (fast pod lifecycle) ship in the module; keep a copy beside the binary.
  local mod; mod="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$version"
  cp -r "$mod/kustomize/stage" "$work/stage"
  chmod -R u+w "$work/stage"
}

build_minio() {
  need go "install Go >= 1.24"
  GOBIN="$work/bin" go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$version" >&2
}

# Google Cloud Storage's emulator, from the Go module proxy, patched (fake-gcs-server/patch.sh).
build_fake-gcs-server() {
  need go "install Go >= 1.24"
  local module=github.com/fsouza/fake-gcs-server@$FAKE_GCS_SERVER_VERSION
  local mod; mod="$(cd "$work" && go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -d "$mod" ]] || { echo "go mod download $module gave no directory" >&2; exit 1; }
  cp -r "$mod" "$work/src" && chmod -R u+w "$work/src"
  (cd "$work/src" && bash "$here/fake-gcs-server/patch.sh" && go build -trimpath -ldflags "-s -w" -o "$work/bin/fake-gcs-server" .) >&2
}

build_azurite() {
  need npm "apt-get install nodejs npm"
  cd "$work" && npm install --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" "@azure/storage-blob@$AZURE_STORAGE_BLOB_VERSION" >&2
  ln -s ../node_modules/.bin/azurite-blob "$work/bin/azurite-blob"
}

build_elasticsearch() {
  need mvn "apt-get install maven"
  need javac "apt-get install openjdk-17-jdk-headless"
  cp "$here/elasticsearch/pom.xml" "$work/pom.xml"
  (cd "$work" && mvn -q -B -Des.version="$version" dependency:copy-dependencies -DoutputDirectory="$work/lib" >&2)
  mkdir -p "$work/classes"
  javac -d "$work/classes" -cp "$work/lib/*" "$here/elasticsearch/EmbeddedElasticsearch.java" >&2
}

# The real helm client, from the Go module proxy, with its version stamped as a release has.
build_helm() {
  need go "install Go >= 1.24"
  GOBIN="$work/bin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
    "helm.sh/helm/v3/cmd/helm@$version" >&2
}

# The benchmarks' restic, from the Go module proxy, with its version stamped as a release has.
build_restic() {
  need go "install Go >= 1.24"
  GOBIN="$work/bin" go install -trimpath -ldflags "-s -w -X main.version=${version#v}" "github.com/restic/restic/cmd/restic@$version" >&2
}

# The benchmarks' rustic, from the Rust package registry (`rustic-rs`), with its locked
# dependencies, built in a target directory of its own that is removed afterwards.
build_rustic() {
  need cargo "install Rust (https://rustup.rs)"
  CARGO_TARGET_DIR="$work/target" cargo install --quiet --locked --root "$work" --version "$version" rustic-rs >&2
  rm -rf "$work/target"
}

"build_$component"
rm -rf "$work/src"
touch "$work/.complete"
rm -rf "$dest" && mv "$work" "$dest"
echo "$dest"
