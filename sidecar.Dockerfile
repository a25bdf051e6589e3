# keymanager sidecar image. Multi-stage: native addons (better-sqlite3, c-kzg) are compiled in the builder stage with
# the toolchain, and the production entry is bundled there (`npm run build`, scripts/build.ts: dist/keymanager.js, run
# with node and the flags of scripts/build.ts PRODUCTION_RUNTIME, no tsx); the runtime stage carries only node, the
# bundle, and the node_modules it loads (the native addons: better-sqlite3, c-kzg, @chainsafe/blst and /hashtree,
# bigint-buffer, with their dependencies).
# Build: docker build -f sidecar.Dockerfile --build-arg MEASURED=measured/<build>.json -t keymanager .
#
# MEASURED is this build's measured settings (docs/protocol.md#measured-settings): trust root, quote and seal
# providers, chain id and registry, pod identity and appId pins. It is copied to /app/measured.json, the only place
# the production entry reads them from, so its bytes are part of the image and of every measurement of it. The
# build fails without it. The file must be inside the build context and not excluded by .dockerignore, which admits
# measured/ (and nothing else beyond package files, src/ and scripts/build.ts). Host settings (ports, URLs, token and
# gas key files) are mounted at run time.
# The image holds the production entry only: the bundle leaves out src/devnet (simulated TEE, devnet PKI, the devnet
# entry's main) and the tests, and the image has no src/ and no bin/keymanager-devnet.js, so no setting or variable can
# turn devnet mode on in it.
#
#   docker build -f sidecar.Dockerfile --build-arg MEASURED=… -t keymanager .                                 # debian:trixie-slim
#   docker build -f sidecar.Dockerfile --build-arg MEASURED=… --build-arg BASE_IMAGE=keymanager-base:trixie .
#
# Any Debian trixie root file system works as the base (trixie's nodejs is 20.19): scripts/image-test.sh builds one
# with `debootstrap --variant=minbase trixie` and `docker import`, for machines that cannot pull images.
ARG BASE_IMAGE=debian:trixie-slim

FROM ${BASE_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive
# libnode-dev: node's headers, so node-gyp builds the addons offline instead of downloading them; python3-setuptools:
# the distutils module that the node-gyp 8 pulled in by @chainsafe/blst still imports (Python 3.12 dropped it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends -o Acquire::Retries=3 nodejs npm libnode-dev python3 python3-setuptools make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Extra CA certificates (PEM) for the build's TLS connections to the npm registry, where a TLS-inspecting proxy is on
# the way. Builder stage only: the runtime image trusts Debian's CA bundle as it comes.
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt && update-ca-certificates; fi
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev: no anvil/forge/solc in the image. better-sqlite3 and c-kzg build from source here, against Debian's
# node headers (libnode-dev).
RUN npm_config_nodedir=/usr npm_config_cafile=/etc/ssl/certs/ca-certificates.crt npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/build.ts
COPY src ./src
# The bundle (without src/devnet: the build fails if any devnet or test module gets in), then node_modules pruned to
# what the bundle loads at run time.
RUN node --import tsx scripts/build.ts --prune
ARG MEASURED=measured.json
COPY ${MEASURED} ./measured.json

FROM ${BASE_IMAGE} AS runtime
# MALLOC_ARENA_MAX and the node flags of the ENTRYPOINT: scripts/build.ts PRODUCTION_RUNTIME (measured there).
ENV DEBIAN_FRONTEND=noninteractive NODE_ENV=production MALLOC_ARENA_MAX=2
RUN apt-get update \
 && apt-get install -y --no-install-recommends -o Acquire::Retries=3 nodejs ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --system --gid 10001 keymanager && useradd --system --uid 10001 --gid keymanager --home-dir /data keymanager \
 && mkdir -p /data /run/keymanager && chown keymanager:keymanager /data /run/keymanager
WORKDIR /app
COPY --from=builder /app/package.json /app/measured.json ./
COPY --from=builder /app/node_modules ./node_modules
COPY --from=builder /app/dist ./dist
# Non-root, with a fixed uid/gid (10001) so a deployment can give it volumes it owns (deploy/compose.yaml's per-pod
# socket volumes are tmpfs with uid=10001). Port 80 needs no capability: Docker ≥ 20.10 sets net.ipv4.ip_unprivileged_port_start=0 in a container's
# network namespace (deploy/compose.yaml sets it explicitly for older engines).
USER keymanager
VOLUME ["/data"]
# Pod listener (pods call http://dstack-keymanager/…) and host listener (bearer token or the status page's sign-in).
EXPOSE 80 8081
HEALTHCHECK --interval=5s --timeout=10s --start-period=60s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:80/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "--max-semi-space-size=4", "--max-old-space-size=128", "/app/dist/keymanager.js"]
# The host settings file (docs/protocol.md#measured-settings); it may set no measured setting.
CMD ["serve", "--config", "/data/host.json"]
