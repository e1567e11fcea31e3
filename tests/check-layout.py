#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that where code sits still tells the design (docs/architecture.md).

The rules, each a failure listing the offending lines:
- engine/ never includes GLib/GTK; tessera.h includes only system headers.
- Layering: an engine folder includes only from the folders allowed below it (LAYERS);
  the run-time engine never includes the devkit; backend/vk never includes backend/cpu.
- No include circle between the project's own headers and sources.
- At most 6 .c files directly in engine/, and no source file over 1,500 lines.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
engine = os.path.join(root, 'engine')
errors = []

# Folder -> folders it may include from (itself always allowed, include/ always allowed).
# model/ knows the file formats and what all configs share (safetensors, the JSON helpers,
# tensor tables, model_index.json); each stage owns its config and tensor table
# (stages/ts-*-config), so model/ never sees a stage. Opening a model folder needs every
# stage's config and checks them against each other, so it is the pipeline's
# (pipeline/ts-model-files), not model/'s.
LAYERS = {
    'core': [],
    'model': ['core', 'backend'],
    'backend': ['core'],
    'backend/cpu': ['core', 'backend'],
    'backend/vk': ['core', 'backend'],
    'backend/check': ['core', 'backend'],
    'stages': ['core', 'model', 'backend'],
    'image': ['core'],
    'pipeline': ['core', 'model', 'backend', 'stages', 'image'],
    '': ['core', 'model', 'backend', 'stages', 'image', 'pipeline'],
}
DEVKIT_MAY_USE = ['devkit/include', 'core', 'model', 'backend', 'stages', 'image', 'pipeline', 'devkit',
                  'devkit/golden']

include_re = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
gui_re = re.compile(r'^(glib|gio|gobject|gtk|gdk|adwaita|libadwaita)[-/.a-z0-9]*')


def rel(path):
    return os.path.relpath(path, root)


def engine_folder(path):
    d = os.path.relpath(os.path.dirname(path), engine)
    return '' if d == '.' else d


graph = {}
sources = []
for top in ['engine', 'app', 'tools', 'tests']:
    for d, _, files in os.walk(os.path.join(root, top)):
        for f in files:
            if f.endswith(('.c', '.h')):
                sources.append(os.path.join(d, f))

for path in sorted(sources):
    with open(path, encoding='utf-8', errors='replace') as fh:
        lines = fh.readlines()
    if len(lines) > 1500:
        errors.append(f'{rel(path)}: {len(lines)} lines (at most 1,500)')
    in_engine = rel(path).startswith('engine' + os.sep)
    folder = engine_folder(path) if in_engine else None
    graph[path] = []
    for n, line in enumerate(lines, 1):
        m = include_re.match(line)
        if not m:
            continue
        kind, name = m.groups()
        where = f'{rel(path)}:{n}: {line.strip()}'
        if in_engine and gui_re.match(name):
            errors.append(f'{where}: engine/ must not include GLib/GTK')
        if kind != '"':
            continue
        if rel(path) == os.path.join('engine', 'include', 'tessera.h'):
            errors.append(f'{where}: tessera.h includes only system headers')
        # Resolve like the compiler: next to the file, then the engine's include paths.
        target = None
        for base in [os.path.dirname(path), engine, os.path.join(engine, 'include'),
                     os.path.join(engine, 'devkit', 'include')]:
            cand = os.path.normpath(os.path.join(base, name))
            if os.path.isfile(cand):
                target = cand
                break
        if target is None:
            continue
        graph[path].append(target)
        if not in_engine or not rel(target).startswith('engine' + os.sep):
            continue
        tfolder = engine_folder(target)
        if tfolder == 'include' or tfolder == folder:
            continue
        if folder.startswith('devkit'):
            if tfolder not in DEVKIT_MAY_USE:
                errors.append(f'{where}: devkit may not include {tfolder}/')
            continue
        if tfolder.startswith('devkit'):
            errors.append(f'{where}: the run-time engine never includes the devkit')
            continue
        allowed = LAYERS.get(folder)
        if allowed is None:
            errors.append(f'{where}: folder engine/{folder} has no layering rule')
        elif tfolder not in allowed:
            errors.append(f'{where}: engine/{folder} may not include engine/{tfolder}/')

# Include circles (depth-first search over the include graph).
state = {}
stack = []


def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in graph.get(node, []):
        if state.get(nxt) == 1:
            cycle = stack[stack.index(nxt):] + [nxt]
            errors.append('include circle: ' + ' -> '.join(rel(c) for c in cycle))
        elif nxt in graph and state.get(nxt) is None:
            visit(nxt)
    stack.pop()
    state[node] = 2


sys.setrecursionlimit(10000)
for node in sorted(graph):
    if state.get(node) is None:
        visit(node)

top_c = [f for f in os.listdir(engine) if f.endswith('.c')]
if len(top_c) > 6:
    errors.append(f'engine/ holds {len(top_c)} .c files directly (at most 6): {top_c}')

if errors:
    print('\n'.join(errors))
    sys.exit(1)
print(f'checked {len(sources)} sources: layering, no include circle, sizes')
