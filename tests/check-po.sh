#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-po.sh — the translation template builds (suite 'data'). Runs xgettext over
# po/POTFILES.in as meson's tessera-pot target does (the glib preset's keywords), into a
# temporary folder, and fails when: a listed file is missing; a file under app/ or ui/
# with marked strings (_(), N_(), C_(), translatable="yes") is not listed, so a new file
# cannot be forgotten; xgettext fails; the template has fewer than MIN messages or lacks
# one from each kind of source (C, GtkBuilder, desktop file, metainfo); or msgfmt finds
# a format string it would reject.
# Usage: check-po.sh SOURCE_DIR [MIN]
set -euo pipefail
src=${1:?usage: check-po.sh SOURCE_DIR [MIN]}
min=${2:-150}
cd "$src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

grep -v -e '^#' -e '^[[:space:]]*$' po/POTFILES.in | sort > "$tmp/listed"
while read -r f; do
  [ -f "$f" ] || { echo "po/POTFILES.in lists $f, which does not exist"; fail=1; }
done < "$tmp/listed"

{ grep -rlE --include='*.c' '(^|[^A-Za-z0-9_])N?C?_ ?\(' app || true
  grep -rl --include='*.ui' 'translatable="yes"' ui || true; } | sort > "$tmp/marked"
while read -r f; do
  grep -qxF "$f" "$tmp/listed" || { echo "$f has translatable strings but is not in po/POTFILES.in"; fail=1; }
done < "$tmp/marked"

xgettext --package-name=tessera --from-code=UTF-8 --add-comments \
  --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 \
  --keyword=g_dngettext:2,3 --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format \
  --flag=g_strdup_printf:1:c-format --flag=g_string_printf:2:c-format \
  --flag=g_set_error:4:c-format --flag=g_error_new:3:c-format \
  -f po/POTFILES.in -o "$tmp/tessera.pot"
n=$(grep -c '^msgid ' "$tmp/tessera.pot")
n=$((n - 1)) # the header
echo "tessera.pot: $n messages from $(wc -l < "$tmp/listed") files"
[ "$n" -ge "$min" ] || { echo "expected at least $min messages"; fail=1; }
for want in 'msgid "Parameters copied to the form"' 'msgid "Keyboard Shortcuts"' \
            'msgid "Image Generator"' 'msgid "Turn text into images on your own computer"'; do
  grep -qF "$want" "$tmp/tessera.pot" || { echo "tessera.pot lacks $want"; fail=1; }
done
# A catalogue made from the template, as a translator's would start: msgfmt checks the
# c-format strings.
sed 's/charset=CHARSET/charset=UTF-8/' "$tmp/tessera.pot" > "$tmp/xx.po"
msgfmt --check-format -o "$tmp/xx.mo" "$tmp/xx.po" || fail=1
exit "$fail"
