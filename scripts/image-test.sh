#!/usr/bin/env bash
# The image test (`npm run image-test`): builds the sidecar image on a locally made Debian trixie base (base images
# cannot be pulled on the project's machines), brings up deploy/compose.yaml (with deploy/compose.test.yaml) against a
# devnet that runs on the host from the repository, and checks what a pod sees:
#   - the sidecar's /healthz (compose health check), and the node onboarding itself from the devnet (auto mode, its
#     quote from the simulated dstack guest agent verified by the devnet's node);
#   - the example app (deploy/example-app) calling http://dstack-keymanager/sealkey and /attest by service name and
#     GetKey through @phala/dstack-sdk over its own socket, checked against the devnet (scripts/image-test.ts check);
#   - the host listener published on loopback: status page and /metrics;
#   - a restart of the sidecar: it unseals its secret (dstack seal) and serves the same /sealkey again.
# It prints the image size, build times, the cold start (container start → /healthz, → ready, → the app's first
# /sealkey), the restart, and its own total time.
#
# Run as root (it installs docker.io, docker-compose and debootstrap with apt when missing, and starts dockerd when
# none runs). Environment: KEYMANAGER_IMAGE (default keymanager-sidecar:test), APP_IMAGE (default
# keymanager-example-app:test), DEBIAN_MIRROR, IMAGE_TEST_DIR (work dir), KEEP_BASE=0 (rebuild the base image).
# Containers talk only to each other and to the devnet (through the docker bridge address). Everything this script
# starts (devnet, containers, volumes, network, dockerd) is stopped or removed on exit; the base image is kept as a
# cache (about 80 MB), the built images too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${IMAGE_TEST_DIR:-$(mktemp -d /tmp/keymanager-image-test.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
IMAGE=${KEYMANAGER_IMAGE:-keymanager-sidecar:test}
APP_IMAGE=${APP_IMAGE:-keymanager-example-app:test}
BASE=keymanager-base:trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PROJECT=keymanager-image-test
HOST_LISTEN=127.0.0.1:18081
MEASURED=measured/.image-test.json
SIDECAR_UID=10001
DOCKERD_PID=""
DEVNET_PID=""
COMPOSE_UP=""

log() { printf '%s image-test: %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.1f", b - a }'; }
fail() { log "FAILED: $*"; exit 1; }
T_START=$(now)

compose() {
  KEYMANAGER_IMAGE="$IMAGE" APP_IMAGE="$APP_IMAGE" IMAGE_TEST_DIR="$WORK" KEYMANAGER_HOST_LISTEN="$HOST_LISTEN" \
    docker-compose --ansi never -f deploy/compose.yaml -f deploy/compose.test.yaml -p "$PROJECT" "$@"
}

cleanup() {
  local code=$?
  if [ -n "$COMPOSE_UP" ]; then
    if [ "$code" != 0 ]; then
      compose logs --no-color >"$WORK/compose.log" 2>&1 || true
      docker inspect -f '{{json .State.Health}}' "$(compose ps -q dstack-keymanager)" >>"$WORK/compose.log" 2>&1 || true
      log "container logs in $WORK/compose.log"
    fi
    compose down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ -n "$DEVNET_PID" ]; then kill "$DEVNET_PID" 2>/dev/null || true; wait "$DEVNET_PID" 2>/dev/null || true; fi
  rm -f "$ROOT/$MEASURED"
  if [ -n "$DOCKERD_PID" ]; then kill "$DOCKERD_PID" 2>/dev/null || true; wait "$DOCKERD_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get update -o Acquire::Retries=3 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Acquire::Retries=3 "$@" >/dev/null
}

# 1. A Docker engine and compose.
command -v docker-compose >/dev/null || { log "installing docker-compose"; apt_install docker-compose; }
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || { log "installing docker.io"; apt_install docker.io; }
  log "starting dockerd"
  dockerd >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || fail "dockerd did not start (see $WORK/dockerd.log)"
fi

# 2. The base image: debootstrap minbase trixie, trimmed as Debian's -slim images are. Kept between runs.
[ "${KEEP_BASE:-1}" = 0 ] && docker rmi -f "$BASE" >/dev/null 2>&1 || true
base_s="cached"
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }
  log "debootstrap --variant=minbase trixie"
  t0=$(now)
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase trixie "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || fail "debootstrap (see $WORK/debootstrap.log)"
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
  base_s="$(elapsed "$t0") s"
fi

# 3. The devnet, on the host from the repository, reachable from containers at the default bridge's address.
GATEWAY=$(docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}')
[ -n "$GATEWAY" ] || fail "no docker bridge address"
log "starting the devnet (containers reach it at $GATEWAY)"
node --import tsx scripts/image-test.ts devnet --dir "$WORK" --listen "$GATEWAY" >"$WORK/devnet.log" 2>&1 &
DEVNET_PID=$!
for _ in $(seq 1200); do [ -f "$WORK/image-test.json" ] && break; kill -0 "$DEVNET_PID" 2>/dev/null || break; sleep 0.5; done
[ -f "$WORK/image-test.json" ] || { tail -5 "$WORK/devnet.log" >&2; fail "the devnet did not come up (see $WORK/devnet.log)"; }
info() { node -e "console.log(require('$WORK/image-test.json')$1)"; }

# 4. The measured settings this build bakes in (docs/protocol.md#measured-settings): the devnet's registry, the dstack
# quote and seal providers, the example app's socket and its identity over HTTP (reverse DNS on deploy/compose.yaml's
# pods network), and the chain view's trust root: the devnet beacon chain's checkpoint and spec, and the registry's
# code hash.
mkdir -p measured
node -e "
  const i = require('$WORK/image-test.json')
  const m = { version: 1, chain: { chainId: i.chainId, registry: i.registry.toLowerCase() }, quote: { provider: 'dstack' },
    seal: { provider: 'dstack' },
    pods: { sockets: [{ path: '/run/keymanager/pods/app/dstack.sock', pod: 'app' }], names: {}, appIds: {},
      dns: { resolver: '127.0.0.11', sourceRanges: ['10.210.0.0/24'], rule: { domain: 'keymanager-pods' } } },
    maxReferenceAge: 64, chainView: i.chainView }
  require('fs').writeFileSync('$MEASURED', JSON.stringify(m, null, 2) + '\n')"

# 5. The images. A TLS-inspecting proxy's CA (if this machine trusts one) goes to the builder stage only.
EXTRA_CA=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
log "docker build $IMAGE on $BASE"
t0=$(now)
docker build -q --force-rm -f sidecar.Dockerfile --build-arg BASE_IMAGE="$BASE" --build-arg MEASURED="$MEASURED" \
  --build-arg "EXTRA_CA_CERTS=$EXTRA_CA" -t "$IMAGE" . >/dev/null || fail "docker build $IMAGE"
build_s=$(elapsed "$t0")
log "docker build $APP_IMAGE"
t0=$(now)
docker build -q --force-rm --build-arg BASE_IMAGE="$BASE" --build-arg "EXTRA_CA_CERTS=$EXTRA_CA" -t "$APP_IMAGE" deploy/example-app >/dev/null || fail "docker build $APP_IMAGE"
app_build_s=$(elapsed "$t0")
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
docker inspect -f '{{.Config.User}} {{json .Config.ExposedPorts}}' "$IMAGE" | grep -q '^keymanager .*"80/tcp"' || fail "the image must run as keymanager and expose port 80"
[ "$(docker run --rm --entrypoint id "$IMAGE" -u)" = "$SIDECAR_UID" ] || fail "the image's user must have uid $SIDECAR_UID (deploy/compose.yaml's socket volumes)"
docker run --rm --entrypoint sh "$IMAGE" -c 'test -f /app/dist/keymanager.js && test ! -e /app/bin && test ! -e /app/src && test ! -e /app/node_modules/tsx' \
  || fail "the image must hold the production bundle only (no bin/, no src/, no tsx)"
refusal=$(docker run --rm -e KEYMANAGER_KILL_AT=tx.fulfillOnboard.stored "$IMAGE" serve --config /nonexistent 2>&1 || true)
[[ "$refusal" == *"reads no KEYMANAGER_* variable"* ]] || fail "the image does not refuse a KEYMANAGER_* variable: $refusal"
refusal=$(docker run --rm "$IMAGE" devnet 2>&1 || true)
[[ "$refusal" == *"the devnet is not part of this build"* ]] || fail "the image's devnet verb: $refusal"

# 6. Host settings (compose.test.yaml mounts $WORK/etc at /etc/keymanager): the devnet's anvil and PCCS through the
# bridge, the host token, a funded gas key, auto mode (the node registers by itself).
mkdir -p "$WORK/etc"
node -e "
  const i = require('$WORK/image-test.json'); const fs = require('fs')
  const host = { dataDir: '/data', chain: { rpcUrl: i.rpcUrl, beaconUrl: i.beaconUrl, fromBlock: 0, rpcTimeoutMs: 60000 }, blobs: { kind: 'anvil', url: i.rpcUrl },
    pod: { host: '0.0.0.0', port: 80 }, host: { host: '0.0.0.0', port: 8081, tokenFile: '/etc/keymanager/host.token' },
    gasKeyFile: '/etc/keymanager/gas.key', collateral: { pccsUrl: i.pccsUrl },
    auto: { register: true, help: true, pollIntervalMs: 250, jitterMs: [200, 500] }, logLevel: 'info' }
  fs.writeFileSync('$WORK/etc/host.json', JSON.stringify(host, null, 2) + '\n')
  fs.writeFileSync('$WORK/etc/host.token', require('crypto').randomBytes(24).toString('hex'))
  fs.writeFileSync('$WORK/etc/gas.key', i.gasKey)"
chown -R "$SIDECAR_UID:$SIDECAR_UID" "$WORK/etc"
chmod 0700 "$WORK/etc"
chmod 0600 "$WORK/etc/host.token" "$WORK/etc/gas.key"
TOKEN=$(cat "$WORK/etc/host.token")

# 7. compose up. `up -d` returns once the app has started, which waits for the sidecar's health check.
log "docker-compose up"
COMPOSE_UP=1
t_up=$(now)
compose up -d >"$WORK/compose-up.log" 2>&1 || { cat "$WORK/compose-up.log" >&2; fail "docker-compose up"; }
up_s=$(elapsed "$t_up")
sidecar=$(compose ps -q dstack-keymanager)
[ -n "$sidecar" ] || fail "no dstack-keymanager container"

# Seconds from the container's (latest) start to the first log line of that run with message $2 (pino's `time`, ms).
since_start() {
  local started
  started=$(date -d "$(docker inspect -f '{{.State.StartedAt}}' "$1")" +%s.%N)
  docker logs "$1" 2>&1 | node -e "
    const [want, started] = [process.argv[1], Number(process.argv[2])]
    for (const line of require('fs').readFileSync(0, 'utf8').split('\n')) {
      let e
      try { e = JSON.parse(line) } catch { continue }
      if (e.msg === want && e.time / 1000 >= started) { console.log((e.time / 1000 - started).toFixed(1)); process.exit(0) }
    }
    process.exit(1)" "$2" "$started"
}

# 8. The app's three calls (it prints one JSON line each; GetKey last).
for _ in $(seq 600); do
  docker logs app 2>&1 | grep -q '"getKey"' && break
  [ "$(docker inspect -f '{{.State.Running}}' app 2>/dev/null)" = true ] || { docker logs app >&2 || true; fail "the app container stopped"; }
  sleep 0.5
done
docker logs -t app >"$WORK/app.log" 2>&1
grep -q '"getKey"' "$WORK/app.log" || { cat "$WORK/app.log" >&2; fail "the app did not finish its calls"; }
started=$(date -d "$(docker inspect -f '{{.State.StartedAt}}' "$sidecar")" +%s.%N)
first_sealkey=$(date -d "$(grep -m1 '"sealkey"' "$WORK/app.log" | cut -d' ' -f1)" +%s.%N)
health_s=$(since_start "$sidecar" listening) || fail "no 'listening' line in the sidecar's log"
ready_s=$(since_start "$sidecar" 'node ready') || fail "the sidecar never became ready"
sealkey_s=$(elapsed "$started" "$first_sealkey")

log "checking the app's answers against the devnet"
node --import tsx scripts/image-test.ts check --dir "$WORK" --app-log "$WORK/app.log" || fail "the app's answers (see $WORK/app.log)"

# /healthz from the app container, by service name (the compose health check asks it inside the sidecar).
healthz=$(docker exec app node -e "
  fetch('http://dstack-keymanager/healthz').then(async r => console.log(r.status, JSON.stringify(await r.json())))") || fail "the app cannot reach http://dstack-keymanager/healthz"
case "$healthz" in
  '200 {"ok":true,"state":"ready"}') echo "✓ app: GET http://dstack-keymanager/healthz answers 200, state ready" ;;
  *) fail "http://dstack-keymanager/healthz from the app answered: $healthz" ;;
esac

# 9. The host listener, published on loopback only: the status page's sign-in form and /metrics with the token.
curl -fsS "http://$HOST_LISTEN/" | grep -qi '<form' || fail "the status page on $HOST_LISTEN has no sign-in form"
curl -fsS -H "authorization: Bearer $TOKEN" "http://$HOST_LISTEN/metrics" | grep -q '^keymanager_pod_requests_total{' || fail "/metrics has no pod request counter"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST_LISTEN/metrics")" = 401 ] || fail "/metrics answers without the host token"
echo "✓ host listener on $HOST_LISTEN: status page sign-in form, /metrics behind the host token"

# 10. A restart: the node unseals its secret through the agent (no onboarding) and the app gets the same key again.
want=$(grep -m1 '"sealkey"' "$WORK/app.log" | sed 's/^[^{]*//' | node -pe 'JSON.parse(require("fs").readFileSync(0)).sealkey.fingerprint')
log "restarting the sidecar"
compose restart dstack-keymanager >/dev/null 2>&1
for _ in $(seq 600); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$sidecar")" = healthy ] && since_start "$sidecar" 'node ready' >/dev/null && break
  sleep 0.5
done
restart_ready_s=$(since_start "$sidecar" 'node ready') || fail "the restarted sidecar is not ready"
got=$(docker exec app node -e "
  fetch('http://dstack-keymanager/sealkey').then(r => r.json()).then(b =>
    console.log(require('crypto').createHash('sha256').update(b.key).digest('hex').slice(0, 16)))")
[ "$got" = "$want" ] || fail "after a restart /sealkey changed ($got, was $want)"
echo "✓ restart: the sidecar unsealed its secret and serves the app the same /sealkey"

printf 'image %s: %s MB (base %s: %s MB, %s); sidecar built in %s s, example app in %s s\n' \
  "$IMAGE" "$((size / 1000000))" "$BASE" "$(($(docker image inspect -f '{{.Size}}' "$BASE") / 1000000))" "$base_s" "$build_s" "$app_build_s"
printf 'cold start (new node, onboards from the devnet): container start → /healthz %s s, → ready %s s, → first /sealkey from the app %s s (docker-compose up %s s)\n' \
  "$health_s" "$ready_s" "$sealkey_s" "$up_s"
printf 'restart (unseals its secret): container start → ready %s s\n' "$restart_ready_s"
printf 'image test total: %s s\n' "$(elapsed "$T_START")"
