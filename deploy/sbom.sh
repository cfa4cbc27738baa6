#!/usr/bin/env bash
# Software bill of materials of the workspace: one CycloneDX JSON document per package (every
# crate under crates/, with its full dependency tree, licenses and package URLs), collected into
# ${SBOM_DIR:-target/sbom}.
#
#   bash deploy/sbom.sh                       # writes target/sbom/<package>.cdx.json
#   SBOM_DIR=/tmp/sbom bash deploy/sbom.sh
#
# Installs cargo-cyclonedx (pinned below) with `cargo install` when it is missing: that compiles
# it once, a few minutes; CI keeps ~/.cargo/bin in its cache. Nothing is compiled besides that:
# cargo-cyclonedx reads `cargo metadata` and Cargo.lock.
#
# These SBOMs describe the Rust dependencies. The image SBOM that `docker buildx build --sbom=true`
# attaches describes the image's OS packages (distroless Debian); the two complement each other.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_CYCLONEDX_VERSION="${CARGO_CYCLONEDX_VERSION:-0.5.9}"
# CycloneDX 1.5: the newest spec this version of cargo-cyclonedx writes (its default is 1.3).
SBOM_SPEC_VERSION="${SBOM_SPEC_VERSION:-1.5}"
SBOM_DIR="${SBOM_DIR:-target/sbom}"

# (Captured first: `grep -q` quitting early would give the listing a SIGPIPE, failing the pipe.)
installed="$(cargo install --list)"
if ! grep -q "^cargo-cyclonedx v${CARGO_CYCLONEDX_VERSION}:" <<<"$installed"; then
  echo "installing cargo-cyclonedx ${CARGO_CYCLONEDX_VERSION}" >&2
  cargo install cargo-cyclonedx --locked --version "${CARGO_CYCLONEDX_VERSION}"
fi

# cargo-cyclonedx runs `cargo metadata` without --locked, which would silently rewrite a stale
# Cargo.lock. Check first, so the SBOM always describes the committed lock file.
cargo metadata --locked --format-version 1 >/dev/null

# cargo-cyclonedx writes <package>.cdx.json next to each package's Cargo.toml; a marker file
# tells this run's documents from any left over.
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT
touch "$marker"
sleep 1 # the marker must be strictly older than the documents, on any file system's clock

cargo cyclonedx --format json --spec-version "${SBOM_SPEC_VERSION}"

mkdir -p "$SBOM_DIR"
mapfile -t written < <(find . -path ./target -prune -o -path ./.git -prune -o \
  -type f -name '*.cdx.json' -newer "$marker" -print | sort)
if ((${#written[@]} == 0)); then
  echo "cargo cyclonedx wrote no *.cdx.json file" >&2
  exit 1
fi
for file in "${written[@]}"; do
  mv -f "$file" "$SBOM_DIR/"
done

echo "SBOMs (CycloneDX ${SBOM_SPEC_VERSION}, JSON) in ${SBOM_DIR}:"
for file in "${written[@]}"; do
  echo "  ${SBOM_DIR}/$(basename "$file")"
done
