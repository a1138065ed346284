#!/usr/bin/env bash
# docs/CONFIG.md must be what tools/gen-config-docs.sh generates from the built programs.
set -euo pipefail
SRC=${CRMSYNC_SOURCE_DIR:?}
BUILD=$(cd "${CRMSYNC_BIN_DIR:?}/.." && pwd)
if diff -u "$SRC/docs/CONFIG.md" <("$SRC/tools/gen-config-docs.sh" "$BUILD" -); then
    echo "1 passed, 0 failed"
else
    echo "docs/CONFIG.md is stale: run tools/gen-config-docs.sh $BUILD"
    echo "0 passed, 1 failed"
    exit 1
fi
