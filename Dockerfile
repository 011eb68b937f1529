# Multi-stage build: compile in a full Node image, run as a non-root user in a slim one.
FROM node:22-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npx tsc -p . && npm prune --omit=dev

FROM node:22-bookworm-slim
RUN groupadd --system s3tgt && useradd --system --gid s3tgt --home /var/lib/s3tgt s3tgt \
 && mkdir -p /var/lib/s3tgt /etc/s3tgt && chown s3tgt:s3tgt /var/lib/s3tgt
WORKDIR /opt/s3tgt
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY package.json ./
COPY config/docker.yaml /etc/s3tgt/s3tgt.yaml
COPY config/s3.yaml /etc/s3tgt/examples/s3.yaml
USER s3tgt
VOLUME /var/lib/s3tgt
# 3260: iSCSI portal; 9470: /metrics and /healthz.
EXPOSE 3260 9470
# Healthy when the service answers /healthz (it listens once every LUN is open).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD node -e "fetch('http://127.0.0.1:9470/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM: graceful stop (logout requests, flush, lease release); give it time to flush.
STOPSIGNAL SIGTERM
# --no-memory-reducer: src/app/node-flags.ts (V8 options serve needs).
ENTRYPOINT ["node", "--no-memory-reducer", "dist/src/cli/main.js"]
CMD ["serve", "--config", "/etc/s3tgt/s3tgt.yaml"]
