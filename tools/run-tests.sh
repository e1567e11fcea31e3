#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the whole test suite the way CI does: Vulkan tests on lavapipe, UI tests under Xvfb.
# Usage: tools/run-tests.sh [BUILD_DIR] [meson test args...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
shift || true

export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}
export GTK_A11Y=none GSK_RENDERER=cairo GSETTINGS_BACKEND=memory
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 700 "$XDG_RUNTIME_DIR"

ninja -C "$build"
exec xvfb-run -a -s '-screen 0 1280x800x24' meson test -C "$build" --print-errorlogs "$@"
