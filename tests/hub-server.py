#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A local stand-in for the Hugging Face hub, for the download tests (no network).

It speaks the endpoints app/hub uses, as the hub does:
  GET /api/models/ORG/NAME/tree/REV?recursive=true   the listing, paginated with a Link
      header (rel="next"), entries {type, oid, size, path, lfs?: {oid, size}}
  GET /ORG/NAME/resolve/REV/PATH   plain files: 200 with X-Repo-Commit; LFS files: 302 to
      /cdn/SHA256 with X-Repo-Commit, X-Linked-Etag and X-Linked-Size
  GET /cdn/SHA256                  the bytes, with Range support (206, 416)
Repositories (built from the bundled demo model, data/demo-model):
  test/demo      the demo model, plus a converted transformer fp16 variant and files the
                 engine never reads (.py, .bin, .onnx, an image, README.md, an unlisted
                 component); the text encoder and VQ have no fp16 variant
  test/private   the same; 401 without "Authorization: Bearer secret-token", 403 with another
  test/badsha    the same, but the listing's sha256 of the VQ weights is wrong
  test/huge      a listing whose transformer weighs 1 PiB (the disk-space check)
  test/nomodel   no model_index.json
  MeissonFlow/Meissonic   test/demo under the name the app's catalogue downloads
Anything else is a 404 (with X-Error-Code: RepoNotFound, as the hub sends).
Faults and observation through /_control/...:
  drop?path=P&after=N[&times=K]  the next K fetches of P (CDN or plain) close the connection
                                 after N bytes of the body
  slow?path=P&delay=S            sleep S seconds per 16 KiB chunk of P (0 ends it)
  log                            the request log, one "METHOD PATH RANGE STATUS" line each
  clear                          empty the log
Run standalone: hub-server.py SOURCE_ROOT PORT_FILE (writes the port, serves until killed);
the Python tests import it and call start().
"""
import hashlib
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = 'secret-token'
COMMIT = 'c0ffee' + '0123456789abcdef' * 2 + '01'  # 40 hex digits
PAGE = 7  # listing entries per page, so that the client must follow Link


def f32_to_f16_safetensors(data):
    """The same tensors in F16 (what *.fp16.safetensors holds)."""
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = bytearray()
    new = {}
    for name, t in sorted(((k, v) for k, v in header.items() if k != '__metadata__'),
                          key=lambda kv: kv[1]['data_offsets'][0]):
        a, b = t['data_offsets']
        chunk = body[a:b]
        if t['dtype'] == 'F32':
            vals = struct.unpack('<%df' % (len(chunk) // 4), chunk)
            chunk = struct.pack('<%de' % len(vals), *vals)
            t = dict(t, dtype='F16')
        new[name] = dict(t, data_offsets=[len(out), len(out) + len(chunk)])
        out += chunk
    if '__metadata__' in header:
        new['__metadata__'] = header['__metadata__']
    h = json.dumps(new).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + bytes(out)


def is_lfs(path):
    return path.endswith(('.safetensors', '.bin', '.onnx', '.png', '.ckpt'))


class Repo:
    def __init__(self, files, private=False, bad_sha=(), huge=None):
        self.files = dict(files)  # path -> bytes
        self.private = private
        self.bad_sha = set(bad_sha)
        self.huge = huge or {}    # path -> listed size, never served

    def listing(self):
        entries, dirs = [], set()
        for path in sorted(set(self.files) | set(self.huge)):
            parts = path.split('/')
            for i in range(1, len(parts)):
                dirs.add('/'.join(parts[:i]))
        for d in sorted(dirs):
            entries.append({'type': 'directory', 'oid': hashlib.sha1(d.encode()).hexdigest(),
                            'size': 0, 'path': d})
        for path in sorted(set(self.files) | set(self.huge)):
            data = self.files.get(path, b'')
            size = self.huge.get(path, len(data))
            e = {'type': 'file', 'oid': hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest(),
                 'size': size, 'path': path}
            if is_lfs(path):
                sha = hashlib.sha256(data).hexdigest()
                if path in self.bad_sha:
                    sha = hashlib.sha256(data + b'!').hexdigest()
                e['lfs'] = {'oid': sha, 'size': size, 'pointerSize': 134}
            entries.append(e)
        return entries


def build_repos(source_root):
    demo_dir = os.path.join(source_root, 'data', 'demo-model')
    files = {}
    for root, _, names in os.walk(demo_dir):
        for n in names:
            p = os.path.join(root, n)
            with open(p, 'rb') as f:
                files[os.path.relpath(p, demo_dir).replace(os.sep, '/')] = f.read()
    tw = 'transformer/diffusion_pytorch_model.safetensors'
    files['transformer/diffusion_pytorch_model.fp16.safetensors'] = \
        f32_to_f16_safetensors(files[tw])
    files['transformer/transformer.py'] = b'class Transformer2DModel: pass\n'
    files['scheduler/scheduler.py'] = b'class Scheduler: pass\n'
    files['vqvae/diffusion_pytorch_model.bin'] = b'\x80\x02pickle' * 100
    files['text_encoder/model.onnx'] = b'onnx' * 100
    files['tokenizer/tokenizer.json'] = b'{}'
    files['README.md'] = b'# demo\n'
    files['assets/sample.png'] = b'\x89PNG\r\n\x1a\n' + b'\0' * 100
    files['unused/config.json'] = b'{}'
    files['unused/model.safetensors'] = files['text_encoder/model.safetensors']
    huge_files = {'model_index.json': files['model_index.json'],
                  'transformer/config.json': files['transformer/config.json']}
    return {
        'test/demo': Repo(files),
        # The app's catalogue entry, for the model picker's UI test.
        'MeissonFlow/Meissonic': Repo(files),
        'test/private': Repo(files, private=True),
        'test/badsha': Repo(files, bad_sha=['vqvae/diffusion_pytorch_model.safetensors']),
        'test/huge': Repo(huge_files, huge={tw: 1 << 50}),
        'test/nomodel': Repo({'README.md': b'# nothing\n', 'config.json': b'{}'}),
    }


class State:
    def __init__(self, source_root):
        self.repos = build_repos(source_root)
        self.blobs = {}
        for r in self.repos.values():
            for data in r.files.values():
                self.blobs[hashlib.sha256(data).hexdigest()] = data
        self.lock = threading.Lock()
        self.log = []
        self.drops = {}   # path -> [after, times]
        self.slow = {}    # path -> delay
        self.sha_path = {}
        for r in self.repos.values():
            for p, data in r.files.items():
                self.sha_path[hashlib.sha256(data).hexdigest()] = p


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):
        pass

    def record(self, status):
        with self.server.state.lock:
            self.server.state.log.append('%s %s %s %d' % (
                self.command, urllib.parse.urlsplit(self.path).path,
                self.headers.get('Range', '-'), status))

    def reply(self, status, body=b'', headers=None, content_type='application/json'):
        self.record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_body(self, path, data, headers):
        """data with Range support, drops and slowness."""
        st = self.server.state
        start = 0
        rng = self.headers.get('Range')
        status = 200
        if rng and rng.startswith('bytes=') and rng.endswith('-'):
            start = int(rng[6:-1])
            if start >= len(data):
                self.reply(416, b'', dict(headers, **{'Content-Range': 'bytes */%d' % len(data)}))
                return
            status = 206
            headers = dict(headers, **{'Content-Range': 'bytes %d-%d/%d' % (
                start, len(data) - 1, len(data))})
        body = data[start:]
        with st.lock:
            drop = st.drops.get(path)
            cut = None
            if drop and drop[1] > 0:
                drop[1] -= 1
                cut = drop[0]
            delay = st.slow.get(path, 0)
        self.record(status)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Accept-Ranges', 'bytes')
        self.end_headers()
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        for i in range(0, len(body), 16384):
            if delay:
                time.sleep(delay)
            self.wfile.write(body[i:i + 16384])

    def control(self, what, q):
        st = self.server.state
        with st.lock:
            if what == 'drop':
                st.drops[q['path']] = [int(q['after']), int(q.get('times', '1'))]
            elif what == 'slow':
                st.slow[q['path']] = float(q['delay'])
            elif what == 'clear':
                st.log = []
            elif what == 'log':
                body = ('\n'.join(st.log) + '\n').encode()
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_response(204)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def do_GET(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split('/')[1:]]
        if parts[:1] == ['_control']:
            self.control(parts[1], q)
            return
        if parts[:1] == ['cdn'] and len(parts) == 2:
            data = st.blobs.get(parts[1])
            if data is None:
                self.reply(404, b'{"error": "no such object"}')
                return
            self.send_body(st.sha_path[parts[1]], data, {})
            return
        if parts[:2] == ['api', 'models'] and len(parts) >= 6 and parts[4] == 'tree':
            repo_id, rev = '/'.join(parts[2:4]), '/'.join(parts[5:])
            kind = 'listing'
        elif len(parts) >= 5 and parts[2] == 'resolve':
            repo_id, rev, path = '/'.join(parts[0:2]), parts[3], '/'.join(parts[4:])
            kind = 'resolve'
        else:
            self.reply(404, b'{"error": "no such endpoint"}')
            return
        repo = st.repos.get(repo_id)
        if repo is None:
            self.reply(404, b'{"error": "Repository not found"}', {'X-Error-Code': 'RepoNotFound'})
            return
        if repo.private:
            auth = self.headers.get('Authorization')
            if auth is None:
                self.reply(401, b'{"error": "Access to this repository is restricted"}')
                return
            if auth != 'Bearer ' + TOKEN:
                self.reply(403, b'{"error": "Invalid credentials"}')
                return
        if rev not in ('main', COMMIT):
            self.reply(404, b'{"error": "Invalid rev id"}', {'X-Error-Code': 'RevisionNotFound'})
            return
        if kind == 'listing':
            entries = repo.listing()
            cursor = int(q.get('cursor', '0'))
            page = entries[cursor:cursor + PAGE]
            headers = {}
            if cursor + PAGE < len(entries):
                headers['Link'] = '<%s?recursive=true&cursor=%d>; rel="next"' % (
                    url.path, cursor + PAGE)
            self.reply(200, json.dumps(page).encode(), headers)
            return
        data = repo.files.get(path)
        if data is None:
            self.reply(404, b'{"error": "Entry not found"}', {'X-Error-Code': 'EntryNotFound'})
            return
        headers = {'X-Repo-Commit': COMMIT}
        if is_lfs(path):
            sha = hashlib.sha256(data).hexdigest()
            listed = sha if path not in repo.bad_sha else hashlib.sha256(data + b'!').hexdigest()
            headers.update({'Location': '/cdn/' + sha, 'X-Linked-Etag': '"%s"' % listed,
                            'X-Linked-Size': str(len(data))})
            self.reply(302, b'', headers)
            return
        self.send_body(path, data, dict(headers, ETag='"%s"' % hashlib.sha1(data).hexdigest()))


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-body (killed, cancelled, or the drop fault) is the
        # point of several tests, not a server error.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def start(source_root):
    server = Server(('127.0.0.1', 0), Handler)
    server.state = State(source_root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == '__main__':
    srv = start(sys.argv[1])
    tmp = sys.argv[2] + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % srv.server_address[1])
    os.rename(tmp, sys.argv[2])
    # Go with the test that started us, even when it crashes.
    parent = os.getppid()
    try:
        while os.getppid() == parent:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
