#!/usr/bin/env bash
# Build the web viewer into web/dist (served by the API at /app/ when present).
#
# Idempotent: `npm ci` runs only when web/node_modules is missing or web/package-lock.json
# changed since the last install; the bundle is rebuilt only when a source, the lock file or
# the build script is newer than web/dist/index.html. Needs node and npm (Node 20 or later).
set -euo pipefail

WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/../web" && pwd)"
cd "$WEB"

if ! command -v npm >/dev/null; then
    echo "build_web: npm is missing; install Node.js 20 or later (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi

LOCK_STAMP=node_modules/.polyvision-lock.sha256
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$LOCK_STAMP" || "$(cat "$LOCK_STAMP")" != "$lock_sum" ]]; then
    echo "build_web: npm ci (web/package-lock.json) ..."
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_sum" >"$LOCK_STAMP"
fi

if [[ -f dist/index.html ]] &&
    [[ -z "$(find src package-lock.json package.json build.mjs tsconfig.json -newer dist/index.html -print -quit)" ]]; then
    echo "build_web: web/dist is up to date"
    exit 0
fi
npm run --silent check
npm run --silent build
