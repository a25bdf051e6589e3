# keymanager sidecar image. Multi-stage: native addons (better-sqlite3, c-kzg) are compiled in the builder
# stage with the toolchain; the runtime stage carries only node, the app and its production node_modules.
# Build: docker build -f sidecar.Dockerfile --build-arg MEASURED=path/to/measured.json -t keymanager .
#
# MEASURED is this build's measured settings (docs/protocol.md#measured-settings): trust root, quote and seal
# providers, chain id and registry, pod identity and appId pins. It is copied to /app/measured.json, the only place
# the production entry reads them from, so its bytes are part of the image and of every measurement of it. The
# build fails without it. Host settings (ports, URLs, token and gas key files) are mounted at run time.
# The image holds the production entry only: the devnet entry (bin/keymanager-devnet.js), src/devnet (simulated TEE,
# devnet PKI) and the tests are left out, so no setting or variable can turn devnet mode on in it.

FROM node:20.20-bookworm-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev: no anvil/forge/solc in the image. better-sqlite3 and c-kzg build from source here.
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin/keymanager.js ./bin/keymanager.js
COPY src ./src
COPY tsconfig.json ./
RUN rm -rf src/devnet && find src -name '*.test.ts' -delete
ARG MEASURED=measured.json
COPY ${MEASURED} ./measured.json

FROM node:20.20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=builder /app /app
# Non-root; the data dir is a volume the seal provider protects (docs/protocol.md#node-state).
RUN groupadd --system keymanager && useradd --system --gid keymanager --home /data keymanager \
 && mkdir -p /data /var/run/keymanager && chown keymanager:keymanager /data /var/run/keymanager
USER keymanager
VOLUME ["/data"]
# Pod listener (pods call http://dstack-keymanager/…) and host listener (bearer token).
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=2s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "/app/bin/keymanager.js"]
# The host settings file (docs/protocol.md#measured-settings); it may set no measured setting.
CMD ["serve", "--config", "/data/host.json"]
