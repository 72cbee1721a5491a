# Kapija container image: build stage compiles TypeScript and native addons (argon2, better-sqlite3);
# the runtime stage holds only the build output, views, static assets and production dependencies.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# Native addons fall back to compiling from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci's postinstall builds better-sqlite3 for the Node.js the project pins (the image's own major).
COPY scripts/native-for-runtime.mjs ./scripts/native-for-runtime.mjs
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim AS runtime
WORKDIR /app
# Two malloc arenas (glibc's default is eight per core): the primary keeps less memory it no
# longer uses; the workers get the same setting from the primary.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    MALLOC_ARENA_MAX=2
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
# dist/ holds the compiled sources and migrations; views/, static/ and content/ are found by walking up from dist/src/http.
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root views ./views
COPY --chown=root:root static ./static
COPY --chown=root:root content ./content
COPY --chown=root:root bin ./bin
# The application files are owned by root and read-only to the process; it runs as the unprivileged "node" user.
USER node
EXPOSE 3000 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
