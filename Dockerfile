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
COPY config/ /etc/s3tgt/
USER s3tgt
EXPOSE 3260
# The portal must accept a TCP connection.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD node -e "require('net').connect(3260,'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "--config", "/etc/s3tgt/s3tgt.yaml"]
