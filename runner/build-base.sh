#!/usr/bin/env bash
# Build the job base image (default tag labyard/base:bookworm) WITHOUT any image registry:
#
#   debootstrap --variant=minbase --include=<packages> bookworm <dir>   (from a Debian mirror)
#   tar -C <dir> -c . | docker import - labyard/base:bookworm
#
# The root-filesystem tarball is cached under $LABYARD_CACHE_DIR (default /var/cache/labyard),
# so a second build (or a rebuild after `docker rmi`) only re-imports it (a few seconds).
# This is the one place that logic lives: tests/services.py calls this script too.
#
# Usage: runner/build-base.sh [TAG]        (run as root; needs debootstrap and a docker CLI)
#
# Environment:
#   LABYARD_DEBIAN_MIRROR   mirror URL (default: the first bookworm URI in apt's sources,
#                           else http://deb.debian.org/debian)
#   LABYARD_BASE_SUITE      Debian suite (default bookworm)
#   LABYARD_BASE_PACKAGES   comma-separated --include list
#                           (default python3,python3-venv,ca-certificates)
#   LABYARD_CACHE_DIR       where the rootfs tarball is kept (default /var/cache/labyard)
#   LABYARD_BASE_FORCE=1    re-import even if TAG exists; LABYARD_BASE_FORCE=2 also re-debootstraps
#   LABYARD_BASE_EXTRA_CA   directory of extra CA certificates (*.crt) to trust inside the image
#                           (default /usr/local/share/ca-certificates: the host's local CAs, e.g.
#                           a TLS-intercepting proxy's, so pip in jobs and builds reaches PyPI;
#                           set it to an empty string to add none). Baked into the cached
#                           tarball: after changing it, rebuild with LABYARD_BASE_FORCE=2.
#   DOCKER                  docker CLI to use (default: docker)
set -euo pipefail

TAG="${1:-labyard/base:bookworm}"
SUITE="${LABYARD_BASE_SUITE:-bookworm}"
PACKAGES="${LABYARD_BASE_PACKAGES:-python3,python3-venv,ca-certificates}"
CACHE_DIR="${LABYARD_CACHE_DIR:-/var/cache/labyard}"
FORCE="${LABYARD_BASE_FORCE:-0}"
DOCKER="${DOCKER:-docker}"

log() { printf 'build-base: %s\n' "$*" >&2; }

detect_mirror() {
    # deb822 (*.sources): the URIs of the first stanza whose Suites has "$SUITE".
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        uri="$(awk -v suite="$SUITE" '
            BEGIN { RS=""; FS="\n" }
            {
                uris=""; ok=0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris=u[1] }
                    if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
                }
                if (ok && uris != "") { print uris; exit }
            }' "$f")"
        if [[ -n "$uri" ]]; then echo "$uri"; return; fi
    done
    # one-line format: deb [opts] URI SUITE components
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        uri="$(sed -E 's/\[[^]]*\]//' "$f" \
            | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }')"
        if [[ -n "$uri" ]]; then echo "$uri"; return; fi
    done
    echo "http://deb.debian.org/debian"
}

if [[ "$FORCE" == "0" ]] && "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG already exists"
    exit 0
fi

ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
KEY="$(printf '%s' "$PACKAGES" | tr ',' '_' | tr -c 'A-Za-z0-9_.-' '_')"
TARBALL="$CACHE_DIR/rootfs-$SUITE-$ARCH-minbase-$KEY.tar"

if [[ "$FORCE" == "2" || ! -s "$TARBALL" ]]; then
    command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install debootstrap"; exit 3; }
    [[ "$(id -u)" == "0" ]] || { log "debootstrap needs root"; exit 3; }
    MIRROR="${LABYARD_DEBIAN_MIRROR:-$(detect_mirror)}"
    mkdir -p "$CACHE_DIR"
    ROOTFS="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
    trap 'umount -R "$ROOTFS/proc" "$ROOTFS/sys" 2>/dev/null || true; rm -rf "$ROOTFS"' EXIT
    log "debootstrap $SUITE ($PACKAGES) from $MIRROR into $ROOTFS"
    start=$SECONDS
    debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" \
        "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
    log "debootstrap done in $((SECONDS - start)) s"
    # Slim the tree: package caches and lists are refetched by `apt-get update` when needed.
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
        "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/debootstrap
    echo "$SUITE" >"$ROOTFS/etc/hostname"
    EXTRA_CA="${LABYARD_BASE_EXTRA_CA-/usr/local/share/ca-certificates}"
    if [[ -n "$EXTRA_CA" ]] && compgen -G "$EXTRA_CA/*.crt" >/dev/null; then
        cp "$EXTRA_CA"/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
        chroot "$ROOTFS" update-ca-certificates >/dev/null
        log "trusting extra CAs from $EXTRA_CA: $(cd "$EXTRA_CA" && echo *.crt)"
    fi
    tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.part" .
    mv "$TARBALL.part" "$TARBALL"
    log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

log "docker import $TARBALL -> $TAG"
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase --include=$PACKAGES $SUITE" \
    "$TARBALL" "$TAG" >/dev/null
log "built $TAG"
