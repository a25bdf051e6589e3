# keymanager sidecar image. Multi-stage: native addons (better-sqlite3, c-kzg) are compiled in the builder
# stage with the toolchain; the runtime stage carries only node, the app and its production node_modules.
# Build: docker build -f sidecar.Dockerfile -t keymanager .
# (Docker engines do not run on the project's CI machines; this file is not built in CI.)

FROM node:20.20-bookworm-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev: no anvil/forge/solc in the image. better-sqlite3 and c-kzg build from source here.
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY tsconfig.json ./

FROM node:20.20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=builder /app /app
# Non-root; the data dir is a volume the seal provider protects (DESIGN.md §9).
RUN groupadd --system keymanager && useradd --system --gid keymanager --home /data keymanager \
 && mkdir -p /data /var/run/keymanager && chown keymanager:keymanager /data /var/run/keymanager
USER keymanager
VOLUME ["/data"]
# Pod listener (pods call http://dstack-keymanager/…) and host listener (bearer token).
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=2s CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "/app/bin/keymanager.js"]
CMD ["serve", "--config", "/data/config.json"]
