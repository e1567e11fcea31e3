# SPDX-License-Identifier: MIT
"""A byte-level BPE in CLIP's format, learned from the demo captions.

The vocabulary has CLIP's layout: the 256 byte symbols of `bytes_to_unicode` in CLIP's
order, the same with `</w>`, then one entry per merge, then `<|startoftext|>` and
`<|endoftext|>` (last, so it is the largest id: the text encoder pools at argmax(ids)).
merges.txt starts with "#version: 0.2" as CLIP's does. `encode` reproduces the slow
CLIPTokenizer on the captions' alphabet (lower-case words and ","), which is all the
training data contains; the C engine's tokenizer reads the written files.
"""
import json
import re
from collections import Counter

WORD_RE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")
MAX_LEN = 77


def bytes_to_unicode():
    """CLIP's reversible byte -> printable character table."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def words_of(text):
    return WORD_RE.findall(" ".join(text.lower().split()))


def symbols_of(word):
    b2u = bytes_to_unicode()
    s = [b2u[b] for b in word.encode("utf-8")]
    s[-1] += "</w>"
    return s


class BPE:
    def __init__(self, merges):
        self.merges = merges
        self.ranks = {m: i for i, m in enumerate(merges)}
        base = list(bytes_to_unicode().values())
        vocab = base + [v + "</w>" for v in base] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.bos, self.eos = self.vocab["<|startoftext|>"], self.vocab["<|endoftext|>"]

    @classmethod
    def learn(cls, captions):
        """Merges the most frequent adjacent pair until every caption word is one symbol."""
        words = Counter(w for c in captions for w in words_of(c))
        seqs = {w: symbols_of(w) for w in words}
        merges = []
        while True:
            pairs = Counter()
            for w, n in words.items():
                s = seqs[w]
                for a, b in zip(s, s[1:]):
                    pairs[(a, b)] += n
            if not pairs:
                break
            best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
            merges.append(best)
            for w in words:
                seqs[w] = merge_pair(seqs[w], best)
        return cls(merges)

    def bpe(self, word):
        s = symbols_of(word)
        while len(s) > 1:
            pairs = [(self.ranks.get(p, 1 << 30), p) for p in zip(s, s[1:])]
            rank, best = min(pairs)
            if rank == 1 << 30:
                break
            s = merge_pair(s, best)
        return s

    def encode(self, text):
        """[bos] + ids + [eos], truncated to 77 and padded with 0 (the pad token "!").
        "!" is an added special token (the pad token), so it is split off first and never
        merged, as in the slow CLIPTokenizer."""
        ids = []
        for i, part in enumerate(text.split("!")):
            if i:
                ids.append(self.vocab["!"])
            ids += [self.vocab[t] for w in words_of(part) for t in self.bpe(w)]
        ids = [self.bos] + ids[:MAX_LEN - 2] + [self.eos]
        return ids + [0] * (MAX_LEN - len(ids))

    def save(self, folder):
        with open(folder + "/vocab.json", "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False, indent=2)
        with open(folder + "/merges.txt", "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in self.merges:
                f.write("%s %s\n" % (a, b))


def merge_pair(s, pair):
    out, i = [], 0
    while i < len(s):
        if i + 1 < len(s) and (s[i], s[i + 1]) == pair:
            out.append(s[i] + s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return out
