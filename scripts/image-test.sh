#!/usr/bin/env bash
# Builds the sidecar image on a locally made Debian trixie base (base images cannot be pulled on the project's
# machines), starts it against a devnet, and measures what an operator cares about: image size, container start →
# /healthz answering, and → state `ready` (a node restarting on its data dir restores its sealed secret).
#
# Run as root (it installs docker.io and debootstrap with apt when missing, and starts dockerd when none runs):
#   npm run image-test            # or: bash scripts/image-test.sh
# Environment: KEYMANAGER_IMAGE (tag, default keymanager-sidecar:test), DEBIAN_MIRROR, IMAGE_TEST_DIR (work dir).
#
# The container shares the host's network namespace: its only peers are the devnet on loopback. Everything this
# script starts (devnet, container, dockerd) is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${IMAGE_TEST_DIR:-$(mktemp -d /tmp/keymanager-image-test.XXXXXX)}
IMAGE=${KEYMANAGER_IMAGE:-keymanager-sidecar:test}
BASE=keymanager-base:trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CONTAINER=keymanager-image-test
POD_PORT=18080
HOST_PORT=18081
DOCKERD_PID=""
DEVNET_PID=""

log() { printf '%s image-test: %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

cleanup() {
  docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
  if [ -n "$DEVNET_PID" ]; then kill "$DEVNET_PID" 2>/dev/null || true; wait "$DEVNET_PID" 2>/dev/null || true; fi
  if [ -n "$DOCKERD_PID" ]; then kill "$DOCKERD_PID" 2>/dev/null || true; wait "$DOCKERD_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get update -o Acquire::Retries=3 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Acquire::Retries=3 "$@" >/dev/null
}

# 1. A Docker engine.
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || { log "installing docker.io"; apt_install docker.io; }
  log "starting dockerd"
  dockerd >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start (see $WORK/dockerd.log)"; exit 1; }
fi

# 2. The base image: debootstrap minbase trixie, trimmed as Debian's -slim images are.
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }
  log "debootstrap --variant=minbase trixie"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase trixie "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
  (
    cd "$WORK/rootfs"
    rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* usr/share/doc/* usr/share/man/* usr/share/info/*
    find usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' 'path-exclude /usr/share/man/*' \
      'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
      >etc/dpkg/dpkg.cfg.d/keymanager-slim
  )
  tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

# 3. The sidecar image. A TLS-inspecting proxy's CA (if this machine trusts one) goes to the builder stage only.
EXTRA_CA=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
log "docker build ($IMAGE on $BASE)"
t0=$(now)
docker build -q -f sidecar.Dockerfile --build-arg BASE_IMAGE="$BASE" --build-arg "EXTRA_CA_CERTS=$EXTRA_CA" -t "$IMAGE" . >/dev/null
build_s=$(elapsed "$t0")
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")

# 4. A devnet on loopback: anvil, the registry, the devnet PKI and PCCS, one node on the host.
log "starting the devnet"
node bin/keymanager.js devnet --nodes 1 --dir "$WORK/devnet" >"$WORK/devnet.log" 2>&1 &
DEVNET_PID=$!
for _ in $(seq 600); do [ -f "$WORK/devnet/devnet.json" ] && break; kill -0 "$DEVNET_PID" 2>/dev/null || break; sleep 0.5; done
[ -f "$WORK/devnet/devnet.json" ] || { log "the devnet did not come up:"; tail -5 "$WORK/devnet.log" >&2; exit 1; }
ref_pod=$(node -e "console.log(require('$WORK/devnet/devnet.json').nodes[0].podUrl)")

# 5. The same node in the container: node 1's data dir (sealed secret included) with its own ports.
rm -rf "$WORK/node"
cp -a "$WORK/devnet/devnet/node1" "$WORK/node"
node -e "
  const fs = require('fs'); const f = '$WORK/node/config.json'; const c = JSON.parse(fs.readFileSync(f, 'utf8'))
  c.pod.port = $POD_PORT; c.host.port = $HOST_PORT; fs.writeFileSync(f, JSON.stringify(c, null, 2))"
uid=$(docker run --rm --entrypoint id "$IMAGE" -u)
chown -R "$uid" "$WORK/node"
log "starting the container"
t0=$(now)
docker run -d --name "$CONTAINER" --network host -v "$WORK:$WORK" "$IMAGE" serve --config "$WORK/node/config.json" >/dev/null
health_s=""
ready_s=""
for _ in $(seq 1200); do
  state=$(curl -fsS "http://127.0.0.1:$POD_PORT/healthz" 2>/dev/null | node -pe 'JSON.parse(require("fs").readFileSync(0)).state' 2>/dev/null || true)
  if [ -n "$state" ] && [ -z "$health_s" ]; then health_s=$(elapsed "$t0"); fi
  if [ "$state" = ready ]; then ready_s=$(elapsed "$t0"); break; fi
  [ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER")" = true ] || { docker logs "$CONTAINER" 2>&1 | tail -5 >&2; exit 1; }
  sleep 0.1
done
[ -n "$ready_s" ] || { log "the container never became ready"; docker logs "$CONTAINER" 2>&1 | tail -5 >&2; exit 1; }

# 6. From a second container: the sidecar answers /sealkey with the key the devnet node gives the same pod.
got=$(docker run --rm --network host --entrypoint node "$IMAGE" -e \
  "fetch('http://127.0.0.1:$POD_PORT/sealkey', { headers: { 'x-keymanager-pod': 'app' } }).then(r => r.json()).then(b => console.log(b.key))")
want=$(curl -fsS -H 'x-keymanager-pod: app' "$ref_pod/sealkey" | node -pe 'JSON.parse(require("fs").readFileSync(0)).key')
[ "$got" = "$want" ] || { log "sealkey from the container ($got) differs from the devnet node's ($want)"; exit 1; }
docker inspect -f '{{.Config.User}} {{json .Config.ExposedPorts}}' "$IMAGE" | grep -q '^keymanager .*"80/tcp"' || { log "image must run as keymanager and expose port 80"; exit 1; }

printf 'image %s: %s MB, built in %.0f s\n' "$IMAGE" "$((size / 1000000))" "$build_s"
printf 'cold start: container start → /healthz %.2f s, → ready %.2f s\n' "$health_s" "$ready_s"
printf '/sealkey from a second container matches the devnet node: %s\n' "$got"
