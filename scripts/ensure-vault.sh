#!/usr/bin/env bash
# ensure-vault.sh — builds the HashiCorp Vault server binary the secrets/vault tests start
# (`vault server -dev`), once per machine, from the Go module proxy, into a cache folder
# outside the repository: ${AMTEDGE_CACHE:-~/.cache/amtedge}/vault-<version>/vault.
#
# Idempotent: exits at once when the binary exists and `vault version` works.
# Recipe (see issue 3, "How tests get the real components"): Vault v1.21.0's go.mod replaces
# api, sdk and api/auth/{approle,kubernetes,userpass} with sub-folders the module zip leaves
# out, so each is downloaded from the proxy and copied into its sub-folder before building.
# About 25 minutes on 2 cores with a cold module cache; the binary is ~500 MB.
set -euo pipefail

VAULT_VERSION=v1.21.0
API_VERSION=v1.22.0
SDK_VERSION=v0.20.0
APPROLE_VERSION=v0.1.0
KUBERNETES_VERSION=v0.10.0
USERPASS_VERSION=v0.1.0

GO=${GO:-go}
CACHE_ROOT=${AMTEDGE_CACHE:-${HOME}/.cache/amtedge}
DEST_DIR="${CACHE_ROOT}/vault-${VAULT_VERSION#v}"
BIN="${DEST_DIR}/vault"

log() { printf 'ensure-vault: %s\n' "$*" >&2; }

if [[ -x "${BIN}" ]] && "${BIN}" version >/dev/null 2>&1; then
	log "$("${BIN}" version) already at ${BIN}"
	exit 0
fi

command -v "${GO}" >/dev/null || { log "go not found in PATH"; exit 1; }
command -v jq >/dev/null || command -v python3 >/dev/null || { log "need jq or python3 to read go mod download -json"; exit 1; }

mkdir -p "${DEST_DIR}"
# One build at a time per machine (two `make test` at once): wait for the other, then use its binary.
if command -v flock >/dev/null; then
	exec 9>"${DEST_DIR}/.lock"
	if ! flock -n 9; then
		log "another ensure-vault.sh is building; waiting for it"
		flock 9
	fi
	if [[ -x "${BIN}" ]] && "${BIN}" version >/dev/null 2>&1; then
		log "$("${BIN}" version) already at ${BIN}"
		exit 0
	fi
fi
BUILD_DIR=$(mktemp -d "${DEST_DIR}/build.XXXXXX")
cleanup() {
	# Module cache copies are read-only; make them writable so rm can remove them.
	chmod -R u+w "${BUILD_DIR}" 2>/dev/null || true
	rm -rf "${BUILD_DIR}"
}
trap cleanup EXIT

# moddir MODULE@VERSION prints the module's extracted source folder in the module cache.
moddir() {
	local json dir
	json=$(cd "${BUILD_DIR}" && "${GO}" mod download -json "$1")
	if command -v jq >/dev/null; then
		dir=$(jq -r '.Dir // empty' <<<"${json}")
	else
		dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("Dir",""))' <<<"${json}")
	fi
	if [[ -z "${dir}" || ! -d "${dir}" ]]; then
		log "go mod download $1 gave no source folder:"
		printf '%s\n' "${json}" >&2
		exit 1
	fi
	printf '%s\n' "${dir}"
}

# copyin MODULE@VERSION SUBDIR copies a module's source into SUBDIR of the build folder.
copyin() {
	local src
	src=$(moddir "$1")
	log "copying $1 into ${2:-.}"
	mkdir -p "${BUILD_DIR}/src/$2"
	cp -R "${src}/." "${BUILD_DIR}/src/$2"
	chmod -R u+w "${BUILD_DIR}/src/$2"
}

start=$(date +%s)
log "building Vault ${VAULT_VERSION} into ${BIN} (about 25 min on 2 cores with a cold module cache)"
log "downloading github.com/hashicorp/vault@${VAULT_VERSION}"
copyin "github.com/hashicorp/vault@${VAULT_VERSION}" ""
copyin "github.com/hashicorp/vault/api@${API_VERSION}" api
copyin "github.com/hashicorp/vault/sdk@${SDK_VERSION}" sdk
copyin "github.com/hashicorp/vault/api/auth/approle@${APPROLE_VERSION}" api/auth/approle
copyin "github.com/hashicorp/vault/api/auth/kubernetes@${KUBERNETES_VERSION}" api/auth/kubernetes
copyin "github.com/hashicorp/vault/api/auth/userpass@${USERPASS_VERSION}" api/auth/userpass

log "go build (GOFLAGS=-mod=mod) — this is the long part"
(cd "${BUILD_DIR}/src" && GOFLAGS="-mod=mod -buildvcs=false" "${GO}" build -o "${BIN}.tmp" .)
mv -f "${BIN}.tmp" "${BIN}"

if ! "${BIN}" version >/dev/null 2>&1; then
	log "built ${BIN} but \`vault version\` fails"
	exit 1
fi
log "$("${BIN}" version) built at ${BIN} in $(( $(date +%s) - start )) s"
