#!/bin/sh
# SPDX-License-Identifier: MIT
# The engine is plain C11: nothing under engine/ may include GLib, GObject, GIO or GTK,
# and the app-facing header must not include internal headers. Fails listing the lines.
src=${1:?usage: check-engine-boundary.sh SOURCE_ROOT}
bad=$(grep -rnE '#[[:space:]]*include[[:space:]]*[<"](glib|gio|gobject|gtk|gdk|adwaita|libadwaita)[-/.a-z0-9]*' \
      "$src/engine" --include='*.c' --include='*.h' 2>/dev/null)
if [ -n "$bad" ]; then
  echo "engine/ must not include GLib/GTK headers:"
  echo "$bad"
  exit 1
fi
bad=$(grep -nE '#[[:space:]]*include[[:space:]]*"' "$src/engine/include/tessera.h")
if [ -n "$bad" ]; then
  echo "tessera.h must include only system headers:"
  echo "$bad"
  exit 1
fi
n=$(find "$src/engine" -name '*.c' | wc -l)
echo "checked $n engine sources: no GLib/GTK includes"
