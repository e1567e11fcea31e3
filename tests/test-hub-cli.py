#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`tessera-cli download` against a local stand-in for the hub (tests/hub-server.py, on
127.0.0.1, no network): the files chosen for each variant and nothing else, a folder the
engine loads, a re-run that fetches nothing, a dropped connection resumed with a Range
request, a kill and a Ctrl+C resumed from the .incomplete file, a file of the wrong size
or content fetched again, a wrong sha256 refused with no final file, token and not-found
errors, the disk-space check and an unreachable endpoint. TAP output.
Usage: test-hub-cli.py TESSERA_CLI SOURCE_ROOT
"""
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

cli, source_root = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location(
    'hub_server', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'hub-server.py'))
hub_server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hub_server)

server = hub_server.start(source_root)
state = server.state
endpoint = 'http://127.0.0.1:%d' % server.server_address[1]
tmp = tempfile.mkdtemp(prefix='tessera-hub-')
demo = state.repos['test/demo'].files
n = 0
failed = 0

ENGINE_FP16 = sorted([
    'model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/config.json',
    'text_encoder/model.safetensors', 'tokenizer/merges.txt',
    'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json',
    'tokenizer/vocab.json', 'transformer/config.json',
    'transformer/diffusion_pytorch_model.fp16.safetensors', 'vqvae/config.json',
    'vqvae/diffusion_pytorch_model.safetensors'])
TW = 'transformer/diffusion_pytorch_model.safetensors'
TW16 = 'transformer/diffusion_pytorch_model.fp16.safetensors'
VQ = 'vqvae/diffusion_pytorch_model.safetensors'


def ok(cond, what, detail=''):
    global n, failed
    n += 1
    if cond:
        print('ok %d - %s' % (n, what))
    else:
        failed += 1
        print('not ok %d - %s' % (n, what))
        for line in str(detail).splitlines()[-30:]:
            print('# ' + line)
    sys.stdout.flush()


def env(**extra):
    e = dict(os.environ)
    for k in ('HF_TOKEN', 'HF_TOKEN_PATH'):
        e.pop(k, None)
    e.update(HF_ENDPOINT=endpoint, HF_HOME=os.path.join(tmp, 'hf-home'),
             XDG_DATA_HOME=os.path.join(tmp, 'xdg-data'))
    e.update(extra)
    return e


def run(*args, **extra):
    p = subprocess.run([cli, 'download'] + list(args), env=env(**extra), capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def files_in(d):
    out = []
    for root, _, names in os.walk(d):
        for name in names:
            out.append(os.path.relpath(os.path.join(root, name), d).replace(os.sep, '/'))
    return sorted(out)


def sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def log():
    with state.lock:
        lines = list(state.log)
        state.log.clear()
    return lines


def fetches(lines):
    return [l for l in lines if '/resolve/' in l or '/cdn/' in l]


def control(what, **q):
    with state.lock:
        if what == 'drop':
            state.drops[q['path']] = [q['after'], q.get('times', 1)]
        elif what == 'slow':
            state.slow[q['path']] = q['delay']


def same_as_server(d, names, repo='test/demo'):
    files = state.repos[repo].files
    bad = [p for p in names if sha(os.path.join(d, p)) != hashlib.sha256(files[p]).hexdigest()]
    return not bad, bad


try:
    # ---- fp16 (the default): exactly what the engine reads; the folder loads ----------
    d = os.path.join(tmp, 'fp16')
    log()
    rc, out = run('test/demo', d)
    ok(rc == 0, 'fp16 download succeeds', out)
    got = [p for p in files_in(d) if p != '.tessera-download.json']
    ok(got == ENGINE_FP16, 'fp16: model_index.json, configs, tokenizer files, the fp16 '
       'transformer and the full-precision text encoder and VQ; no .py/.bin/.onnx/images/'
       'cards/unlisted components', '\n'.join(got))
    good, bad = same_as_server(d, ENGINE_FP16)
    ok(good, 'every file matches the server byte for byte', bad)
    ok('at commit ' + hub_server.COMMIT in out and d in out,
       'the output names the commit and the folder', out)
    lines = log()
    ok(any('/resolve/main/model_index.json' in l for l in lines)
       and all('/resolve/main/' not in l for l in fetches(lines) if 'model_index' not in l),
       'files after the first are fetched at the commit X-Repo-Commit named',
       '\n'.join(lines))
    ok(any(l.endswith(' 302') for l in lines) and any('/cdn/' in l for l in lines),
       'LFS files follow the redirect to the CDN', '\n'.join(lines))
    p = subprocess.run([cli, 'inspect', '--fp16', d], capture_output=True, text=True)
    ok(p.returncode == 0 and 'F16' in p.stdout, 'tessera-cli inspect --fp16 loads the folder',
       p.stdout + p.stderr)
    # On the CPU: the folder is what is tested (and lavapipe's JIT trips LeakSanitizer).
    p = subprocess.run([cli, 'generate', '--model', d, '--backend', 'cpu', '--prompt',
                        'a red circle', '--steps', '2', '--out', os.path.join(tmp, 'a.png'),
                        '--quiet'], capture_output=True, text=True)
    ok(p.returncode == 0 and os.path.getsize(os.path.join(tmp, 'a.png')) > 0,
       'tessera-cli generate --model DIR draws with the downloaded folder', p.stdout + p.stderr)

    # ---- a re-run fetches nothing ------------------------------------------------------
    rc, out = run('test/demo', d)
    lines = log()
    ok(rc == 0 and not fetches(lines) and 'fetched 0' in out,
       're-run with everything in place fetches nothing (listing only)',
       out + '\n'.join(lines))
    ok('checking the file in place' not in out, 're-run hashes nothing (verification '
       'remembered by size and mtime)', out)
    # A touched file (new mtime, same bytes) is hashed again, not fetched.
    os.utime(os.path.join(d, VQ), (time.time() + 5, time.time() + 5))
    rc, out = run('test/demo', d)
    lines = log()
    ok(rc == 0 and 'checking the file in place' in out and not fetches(lines),
       'a touched weight file is re-hashed, not fetched', out + '\n'.join(lines))

    # ---- size and content disagreeing with the listing -------------------------------
    with open(os.path.join(d, VQ), 'r+b') as f:
        f.truncate(1000)
    rc, out = run('test/demo', d)
    lines = fetches(log())
    ok(rc == 0 and len([l for l in lines if '/cdn/' in l]) == 1
       and same_as_server(d, [VQ])[0], 'a file of the wrong size is fetched again (only it)',
       out + '\n'.join(lines))
    with open(os.path.join(d, VQ), 'r+b') as f:
        f.seek(5000)
        f.write(b'XXXX')
    rc, out = run('test/demo', d)
    lines = fetches(log())
    ok(rc == 0 and len([l for l in lines if '/cdn/' in l]) == 1
       and same_as_server(d, [VQ])[0],
       'a file of the right size but wrong sha256 is fetched again', out + '\n'.join(lines))

    # ---- variants ------------------------------------------------------------------------
    d32 = os.path.join(tmp, 'fp32')
    rc, out = run('--variant', 'fp32', 'test/demo', d32)
    got = files_in(d32)
    ok(rc == 0 and TW in got and TW16 not in got, '--variant fp32: full precision only', out)
    dall = os.path.join(tmp, 'all')
    rc, out = run('--variant=all', 'test/demo', dall)
    got = files_in(dall)
    ok(rc == 0 and TW in got and TW16 in got and VQ in got, '--variant all: both', out)
    rc, out = run('--variant', 'fp8', 'test/demo', dall)
    ok(rc == 2 and 'fp8' in out, 'an unknown variant is a usage error', out)
    log()

    # ---- default folder ------------------------------------------------------------------
    rc, out = run('test/demo')
    dd = os.path.join(tmp, 'xdg-data', 'tessera', 'models', 'demo')
    ok(rc == 0 and dd in out and os.path.isfile(os.path.join(dd, 'model_index.json')),
       'DIR defaults to $XDG_DATA_HOME/tessera/models/NAME and the output says so', out)
    log()

    # ---- a dropped connection resumes with Range ------------------------------------
    dr = os.path.join(tmp, 'drop')
    control('drop', path=TW16, after=1000000)
    control('drop', path='tokenizer/vocab.json', after=100)
    rc, out = run('test/demo', dr)
    lines = log()
    ok(rc == 0 and any('/cdn/' in l and 'bytes=1000000-' in l and l.endswith(' 206')
                       for l in lines), 'a drop mid-file resumes with Range: bytes=N-',
       out + '\n'.join(lines))
    ok(any('vocab.json bytes=100- 206' in l for l in lines),
       'a drop in a plain (non-LFS) file resumes too', '\n'.join(lines))
    good, bad = same_as_server(dr, ENGINE_FP16)
    ok(rc == 0 and good and 'resuming at 1000000 bytes' in out,
       'the resumed files are whole and correct', out)

    # ---- kill -9 mid-file, then resume from the .incomplete file ---------------------------
    def interrupted(sig, d):
        control('slow', path=TW16, delay=0.05)
        p = subprocess.Popen([cli, 'download', 'test/demo', d], env=env(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        part = os.path.join(d, TW16 + '.incomplete')
        deadline = time.time() + 60
        while time.time() < deadline and not (os.path.exists(part)
                                               and os.path.getsize(part) > 200000):
            time.sleep(0.05)
        p.send_signal(sig)
        out = p.communicate(timeout=60)[0]
        control('slow', path=TW16, delay=0)
        return p.returncode, out, part

    dk = os.path.join(tmp, 'kill')
    rc, out, part = interrupted(signal.SIGKILL, dk)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    ok(rc == -signal.SIGKILL and have > 0 and not os.path.exists(os.path.join(dk, TW16))
       and not os.path.exists(os.path.join(dk, 'model_index.json')),
       'killed mid-file: a .incomplete file, no final file, no model_index.json yet', out)
    log()
    rc, out = run('test/demo', dk)
    lines = log()
    ok(rc == 0 and any('bytes=%d-' % have in l for l in lines) and same_as_server(dk, ENGINE_FP16)[0]
       and not os.path.exists(part),
       'the next run resumes from the .incomplete file (Range: bytes=%d-)' % have,
       out + '\n'.join(lines))

    di = os.path.join(tmp, 'sigint')
    rc, out, part = interrupted(signal.SIGINT, di)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    ok(rc == 130 and 'run the same command again to resume' in out and have > 0
       and not os.path.exists(os.path.join(di, TW16)),
       'Ctrl+C: exit 130, a resumable .incomplete file and a hint', out)
    log()
    rc, out = run('test/demo', di)
    lines = log()
    ok(rc == 0 and any('bytes=%d-' % have in l for l in lines)
       and same_as_server(di, ENGINE_FP16)[0], 'after Ctrl+C the next run resumes',
       out + '\n'.join(lines))

    # ---- a wrong sha256 is refused --------------------------------------------------------
    db = os.path.join(tmp, 'badsha')
    rc, out = run('test/badsha', db)
    lines = log()
    ok(rc == 1 and 'sha256 mismatch' in out and VQ in out, 'a wrong sha256 fails the download',
       out)
    ok(not os.path.exists(os.path.join(db, VQ)) and not os.path.exists(os.path.join(db, VQ + '.incomplete'))
       and not os.path.exists(os.path.join(db, 'model_index.json')),
       'no final file, no .incomplete and no model_index.json after a wrong sha256', files_in(db))
    vq_cdn = '/cdn/' + hashlib.sha256(demo[VQ]).hexdigest()
    ok(len([l for l in lines if vq_cdn in l]) == 2,
       'the bad file is fetched twice (once more in case it was damaged on the way), no more',
       '\n'.join(lines))

    # ---- tokens and not found --------------------------------------------------------------
    rc, out = run('test/private', os.path.join(tmp, 'p1'))
    ok(rc == 1 and 'this repository needs a token: set HF_TOKEN' in out, '401 without a token',
       out)
    rc, out = run('test/private', os.path.join(tmp, 'p2'), HF_TOKEN='wrong')
    ok(rc == 1 and 'HF_TOKEN was refused' in out, '403 with a wrong token', out)
    rc, out = run('test/private', os.path.join(tmp, 'p3'), HF_TOKEN='secret-token')
    ok(rc == 0, 'HF_TOKEN opens the private repository', out)
    os.makedirs(os.path.join(tmp, 'hf-home'), exist_ok=True)
    with open(os.path.join(tmp, 'hf-home', 'token'), 'w') as f:
        f.write('secret-token\n')
    rc, out = run('test/private', os.path.join(tmp, 'p4'))
    os.unlink(os.path.join(tmp, 'hf-home', 'token'))
    ok(rc == 0, "huggingface_hub's token file ($HF_HOME/token) works too", out)
    log()
    rc, out = run('test/nope', os.path.join(tmp, 'nf'))
    ok(rc == 1 and 'repository not found: test/nope' in out, '404: repository not found', out)
    rc, out = run('--revision', 'v9', 'test/demo', os.path.join(tmp, 'nf'))
    ok(rc == 1 and 'revision not found: v9' in out, 'an unknown revision', out)
    rc, out = run('test/nomodel', os.path.join(tmp, 'nm'))
    ok(rc == 1 and 'no model_index.json' in out, 'a repository without model_index.json', out)
    rc, out = run('test/private', d, HF_TOKEN='secret-token')
    ok(rc == 1 and 'holds test/demo' in out, 'a folder holding another repository is refused',
       out)

    # ---- disk space, no network ------------------------------------------------------------
    log()
    rc, out = run('test/huge', os.path.join(tmp, 'huge'))
    lines = log()
    ok(rc == 1 and 'not enough disk space' in out
       and [l for l in fetches(lines) if 'model_index.json' not in l] == []
       and files_in(os.path.join(tmp, 'huge')) == [],
       'disk space is checked before any weight is fetched (only model_index.json, into '
       'memory) and nothing is written', out + '\n'.join(lines))
    t0 = time.time()
    rc, out = run('test/demo', os.path.join(tmp, 'off'), HF_ENDPOINT='http://127.0.0.1:1')
    ok(rc == 1 and 'cannot reach http://127.0.0.1:1' in out and time.time() - t0 < 10,
       'an unreachable endpoint fails at once with a clear error', out)
    rc, out = run('not-a-repo', os.path.join(tmp, 'off'))
    ok(rc == 1 and 'not a repository id' in out, 'a malformed repository id', out)
finally:
    server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

print('1..%d' % n)
sys.exit(1 if failed else 0)
