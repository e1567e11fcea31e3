#!/bin/sh
# SPDX-License-Identifier: MIT
# What tessera-cli's --out does to what is already at the path (issue 17, item 1): only an
# absent path or a regular file is written (a symbolic link to a regular file replaces the
# file it points to and stays a link); a FIFO, a device, a directory, a socket or a link to
# one is refused by name before the model loads and left as it was; `--out -` writes the
# PNG to standard output; a failed write (a full file system) leaves the old file intact
# and no temporary file; a temporary file left by a SIGKILL is removed by the next save into
# that folder, while a live writer's (locked) one and other programs' files are kept. Cases
# that need root (a device node, a tmpfs) or strace skip themselves otherwise. Skips
# without the golden set (its tiny model generates the images).
set -eu
cli=${1:?usage: test-output-path.sh TESSERA_CLI}
golden=${TESSERA_GOLDEN_DIR:-}
if [ -z "$golden" ] || [ ! -f "$golden/index.json" ]; then
  echo "1..0 # SKIP golden set not found"
  exit 0
fi
model="$golden/models/tiny-meissonic"
tmp=$(mktemp -d)
mounts=""
helper=""
cleanup() {
  [ -n "$helper" ] && kill "$helper" 2>/dev/null || true
  for m in $mounts; do umount "$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $*"; }
fail() { n=$((n + 1)); echo "not ok $n - $*"; [ -f "$tmp/err" ] && sed 's/^/# /' "$tmp/err"; exit 1; }
root=false
[ "$(id -u)" -eq 0 ] && root=true

gen() { timeout 120 "$cli" generate --model "$model" --size 256x256 --steps 2 --seed 7 --quiet --prompt "a cat" "$@"; }

# refused NAME PATH PATTERN: --out PATH fails at once, before the model loads (the model
# folder given does not exist, so only the output check can produce the message), and the
# message names PATH and matches PATTERN.
refused() {
  name=$1 path=$2 pattern=$3
  rc=0
  timeout 20 "$cli" generate --model "$tmp/no-such-model" --prompt x --out "$path" \
    >/dev/null 2>"$tmp/err" </dev/null || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$name: refused (rc $rc)"
  grep -Fq "'$path'" "$tmp/err" && grep -Eq "$pattern" "$tmp/err" || fail "$name: message"
  ok "$name: refused before loading, named"
}

# A FIFO: refused, and still a FIFO afterwards (it used to become a regular file).
mkfifo "$tmp/fifo.png"
refused "FIFO" "$tmp/fifo.png" "is a FIFO, not a regular file"
[ -p "$tmp/fifo.png" ] && ok "FIFO left as it was" || fail "FIFO left as it was"

# A device node in a temporary folder (root only: mknod), here the twin of /dev/full.
if $root && mknod "$tmp/full" c 1 7 2>/dev/null; then
  refused "character device" "$tmp/full" "is a character device, not a regular file"
  [ -c "$tmp/full" ] && ok "device node left as it was" || fail "device node left as it was"
else
  skip "character device (needs root and mknod)"
  skip "device node left as it was"
fi

# A directory, a socket, a link to a device, a dangling link, a link loop.
mkdir "$tmp/dir.png"
refused "directory" "$tmp/dir.png" "is a directory, not a regular file"
if python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$tmp/sock.png" 2>/dev/null; then
  refused "socket" "$tmp/sock.png" "is a socket, not a regular file"
  [ -S "$tmp/sock.png" ] && ok "socket left as it was" || fail "socket left as it was"
else
  skip "socket (no python3)"
  skip "socket left as it was"
fi
ln -s /dev/null "$tmp/null-link.png"
refused "symlink to /dev/null" "$tmp/null-link.png" "symbolic link to a character device"
[ "$(readlink "$tmp/null-link.png")" = /dev/null ] && [ -c /dev/null ] \
  && ok "symlink to /dev/null left as it was" || fail "symlink to /dev/null left as it was"
ln -s "$tmp/nowhere.png" "$tmp/dangling.png"
refused "dangling symlink" "$tmp/dangling.png" "dangling symbolic link"
[ ! -e "$tmp/nowhere.png" ] && ok "dangling symlink: no file created" || fail "dangling symlink: no file created"
ln -s loop.png "$tmp/loop.png"
refused "symlink loop" "$tmp/loop.png" "symbolic link loop"

# Folders: missing, not a folder, read-only (a read-only tmpfs as root, who passes any
# permission check; chmod otherwise).
refused "missing folder" "$tmp/no-such-dir/x.png" "No such file or directory"
echo data > "$tmp/plain"
refused "a file as the folder" "$tmp/plain/x.png" "Not a directory"
mkdir "$tmp/ro"
ro_ok=false
if $root; then
  mount -t tmpfs -o ro,size=64k tmpfs "$tmp/ro" 2>/dev/null && mounts="$mounts $tmp/ro" && ro_ok=true
else
  chmod 555 "$tmp/ro" && ro_ok=true
fi
if $ro_ok; then
  refused "read-only folder" "$tmp/ro/x.png" "cannot write in folder"
else
  skip "read-only folder (cannot mount a read-only tmpfs)"
fi
# inpaint checks its --out the same way.
rc=0
timeout 20 "$cli" inpaint --model "$tmp/no-such-model" --image "$tmp/a.png" --mask "$tmp/a.png" \
  --prompt x --out "$tmp/fifo.png" >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "is a FIFO" "$tmp/err" && ok "inpaint: FIFO refused first" || fail "inpaint: FIFO refused first"

# A regular file, then a symbolic link to it (from another folder): the file it points to
# is replaced, the link stays a link, and no temporary file is left in either folder.
gen --out "$tmp/a.png" >/dev/null 2>"$tmp/err" || fail "generate to a new file"
[ "$(head -c 8 "$tmp/a.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
  && ok "a new file: a PNG" || fail "a new file: a PNG"
mkdir "$tmp/other"
echo "old" > "$tmp/other/target.png"
ln -s "$tmp/other/target.png" "$tmp/link.png"
gen --out "$tmp/link.png" >/dev/null 2>"$tmp/err" || fail "generate through a symlink"
[ -L "$tmp/link.png" ] && [ "$(readlink "$tmp/link.png")" = "$tmp/other/target.png" ] \
  && ok "symlink to a file: the link is kept" || fail "symlink to a file: the link is kept"
cmp -s "$tmp/a.png" "$tmp/other/target.png" \
  && ok "symlink to a file: the file it points to is replaced" || fail "symlink: target replaced"
ls -a "$tmp" "$tmp/other" | grep -q '\.tmp-' && fail "no temporary file left" || ok "no temporary file left"
# A replaced file keeps its permission bits.
chmod 640 "$tmp/other/target.png"
gen --out "$tmp/link.png" >/dev/null 2>"$tmp/err" || fail "generate over a 0640 file"
[ "$(stat -c %a "$tmp/other/target.png")" = 640 ] && ok "a replaced file keeps its mode" \
  || fail "a replaced file keeps its mode"

# --out -: the PNG on standard output, the same bytes as the file; nothing else on stdout.
gen --out - >"$tmp/stdout.png" 2>"$tmp/err" || fail "--out -"
cmp -s "$tmp/a.png" "$tmp/stdout.png" && ok "--out -: the PNG on standard output" \
  || fail "--out -: the PNG on standard output"
ls "$tmp" | grep -q '^-$' && fail "--out -: no file named -" || ok "--out -: no file named -"

# A full file system (root: a 64 KiB tmpfs): the write fails, the old file is intact and no
# temporary file is left.
mkdir "$tmp/full-fs"
if $root && mount -t tmpfs -o size=64k tmpfs "$tmp/full-fs" 2>/dev/null; then
  mounts="$mounts $tmp/full-fs"
  echo "the old image" > "$tmp/full-fs/old.png"
  dd if=/dev/zero of="$tmp/full-fs/filler" bs=4k 2>/dev/null || true
  rc=0
  gen --out "$tmp/full-fs/old.png" >/dev/null 2>"$tmp/err" || rc=$?
  [ "$rc" -ne 0 ] && grep -q "No space left" "$tmp/err" && ok "full file system: an error" \
    || fail "full file system: an error"
  [ "$(cat "$tmp/full-fs/old.png")" = "the old image" ] && ok "full file system: the old file is intact" \
    || fail "full file system: the old file is intact"
  ls -a "$tmp/full-fs" | grep -q '\.tmp-' && fail "full file system: no temporary file left" \
    || ok "full file system: no temporary file left"
else
  skip "full file system (needs root and a tmpfs)"
  skip "full file system: the old file is intact"
  skip "full file system: no temporary file left"
fi

# SIGKILL mid-write: strace holds the process in fsync (after the temporary file is written,
# before the rename) and it is killed there. The next save into the folder removes the
# stale temporary file.
mkdir "$tmp/killed"
if command -v strace >/dev/null 2>&1 &&
   strace -qq -o /dev/null -e trace=none true 2>/dev/null; then
  strace -qq -o /dev/null -e trace=fsync -e inject=fsync:delay_enter=30000000 \
    "$cli" generate --model "$model" --size 256x256 --steps 2 --seed 7 --quiet --prompt "a cat" \
    --out "$tmp/killed/k.png" >/dev/null 2>&1 &
  helper=$!
  i=0
  while ! ls "$tmp/killed" | grep -q '^k\.png\.tmp-' && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
  child=$(cat "/proc/$helper/task/$helper/children" 2>/dev/null | awk '{print $1}')
  [ -n "$child" ] || fail "SIGKILL: the writer's process"
  kill -KILL "$child"
  # strace itself would sit out the injected delay: it goes too.
  kill -KILL "$helper" 2>/dev/null || true
  wait "$helper" 2>/dev/null || true
  helper=""
  ls "$tmp/killed" | grep -q '^k\.png\.tmp-' && [ ! -e "$tmp/killed/k.png" ] \
    && ok "SIGKILL mid-write: a temporary file is left, no k.png" || fail "SIGKILL mid-write leaves a temporary file"
else
  # No strace (or no ptrace): what a killed save leaves, made by hand.
  head -c 100 "$tmp/a.png" > "$tmp/killed/k.png.tmp-Ab12Cd"
  skip "SIGKILL mid-write (no strace): a temporary file made by hand"
fi
# Files the cleanup must keep: another program's temporary file, and one of ours that a
# live writer holds locked.
echo notes > "$tmp/killed/notes.txt.tmp-abc123"
echo live > "$tmp/killed/live.png.tmp-Zz9Yy8"
touch -d '1 hour ago' "$tmp/killed/notes.txt.tmp-abc123" "$tmp/killed/live.png.tmp-Zz9Yy8"
# One process that takes the lock and then becomes sleep (exec keeps the pid and the locked
# descriptor), so that killing $helper releases it and leaves nothing running.
(exec 9<"$tmp/killed/live.png.tmp-Zz9Yy8"; flock 9; exec sleep 60) >/dev/null 2>&1 &
helper=$!
sleep 3 # older than the 2 s under which a temporary file is never taken for stale
gen --out "$tmp/killed/k.png" >/dev/null 2>"$tmp/err" || fail "the rerun"
ls "$tmp/killed" | grep -q '^k\.png\.tmp-' && fail "the rerun removes the stale temporary file" \
  || ok "the rerun removes the stale temporary file"
cmp -s "$tmp/a.png" "$tmp/killed/k.png" && ok "the rerun writes k.png" || fail "the rerun writes k.png"
[ -f "$tmp/killed/notes.txt.tmp-abc123" ] && ok "another program's .tmp- file is kept" \
  || fail "another program's .tmp- file is kept"
[ -f "$tmp/killed/live.png.tmp-Zz9Yy8" ] && ok "a locked (live) temporary file is kept" \
  || fail "a locked (live) temporary file is kept"
kill "$helper" 2>/dev/null || true
wait "$helper" 2>/dev/null || true
helper=""

echo "1..$n"
