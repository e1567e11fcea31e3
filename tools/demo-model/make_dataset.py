# SPDX-License-Identifier: MIT
"""Procedural scenes for the demo model: 1-2 flat objects on a plain background.

This is the data source of the demo model (tools/demo-model/train.py) and of the held-out
prompt list that tools/demo-eval scores. A scene is a small dict (background colour and a
list of objects with colour, shape, size and centre); `render` draws it with PIL, and
`caption` writes the templated English caption that the C checker (tools/demo-checker.c)
parses back. Everything is a pure function of the seed, so the training set and the
held-out list are reproducible.

Usage:
    make_dataset.py --out DIR [--n N] [--size 256] [--seed 0]   PNGs + captions.tsv
    make_dataset.py --eval-prompts FILE [--seed 1]              held-out captions
    make_dataset.py --out DIR --held-out [--seed 1]            held-out scenes as PNGs
"""
import argparse
import hashlib
import math
import os
import random

from PIL import Image, ImageDraw

# The palette the checker knows too (tools/demo-checker.c keeps the same RGB values).
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "orange": (245, 140, 20),
    "purple": (140, 40, 180),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
SHAPES = ["circle", "square", "triangle", "star"]
SIZES = {"small": 0.12, "large": 0.24}  # radius as a fraction of the image side
TWO_OBJECT_RADIUS = 0.15
POSITIONS = {
    "left": (0.27, 0.5),
    "right": (0.73, 0.5),
    "top": (0.5, 0.27),
    "bottom": (0.5, 0.73),
    "center": (0.5, 0.5),
}
POSITION_PHRASE = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}
JITTER = 0.03
STAR_INNER = 0.45


def is_held_out(scene):
    """A fixed ~8 % of the attribute combinations never appear in training."""
    objs = scene["objects"]
    if len(objs) == 1:
        o = objs[0]
        key = "1|%s|%s|%s|%s" % (o["colour"], o["shape"], o["position"], scene["background"])
    else:
        key = "2|%s|%s|%s|%s" % (objs[0]["colour"], objs[0]["shape"],
                                 objs[1]["colour"], objs[1]["shape"])
    return hashlib.sha256(key.encode()).digest()[0] < 20


def sample_scene(rng):
    """One random scene; rng is a random.Random."""
    names = list(COLOURS)
    background = rng.choice(names)
    if rng.random() < 0.7:
        colour = rng.choice([c for c in names if c != background])
        size = rng.choice(list(SIZES))
        position = rng.choice(list(POSITIONS))
        cx, cy = POSITIONS[position]
        objects = [{
            "colour": colour, "shape": rng.choice(SHAPES), "size": size, "position": position,
            "cx": cx + rng.uniform(-JITTER, JITTER), "cy": cy + rng.uniform(-JITTER, JITTER),
            "r": SIZES[size] * rng.uniform(0.92, 1.08),
        }]
    else:
        c1, c2 = rng.sample([c for c in names if c != background], 2)
        objects = []
        for colour, cx in ((c1, 0.27), (c2, 0.73)):
            objects.append({
                "colour": colour, "shape": rng.choice(SHAPES), "size": None, "position": None,
                "cx": cx + rng.uniform(-JITTER, JITTER), "cy": 0.5 + rng.uniform(-JITTER, JITTER),
                "r": TWO_OBJECT_RADIUS * rng.uniform(0.92, 1.08),
            })
    return {"background": background, "objects": objects,
            "say_background": rng.random() < 0.8}


def caption(scene):
    objs = scene["objects"]
    if len(objs) == 1:
        o = objs[0]
        text = "a %s %s %s %s" % (o["size"], o["colour"], o["shape"], POSITION_PHRASE[o["position"]])
    else:
        text = "a %s %s and a %s %s" % (objs[0]["colour"], objs[0]["shape"],
                                        objs[1]["colour"], objs[1]["shape"])
    if scene["say_background"]:
        text += ", %s background" % scene["background"]
    return text


def shape_polygon(shape, cx, cy, r):
    if shape == "square":
        s = r * 0.9  # half side: a square of the same "radius" looks as big as the circle
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [(cx + r * math.cos(math.radians(a)), cy - r * math.sin(math.radians(a)))
                for a in (90, 210, 330)]
    if shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * STAR_INNER
            a = math.radians(90 + 36 * k)
            pts.append((cx + rr * math.cos(a), cy - rr * math.sin(a)))
        return pts
    raise ValueError(shape)


def render(scene, size):
    """RGB PIL image of side `size`; 4x supersampled so edges are anti-aliased."""
    ss = 4
    big = size * ss
    img = Image.new("RGB", (big, big), COLOURS[scene["background"]])
    draw = ImageDraw.Draw(img)
    for o in scene["objects"]:
        cx, cy, r = o["cx"] * big, o["cy"] * big, o["r"] * big
        fill = COLOURS[o["colour"]]
        if o["shape"] == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            draw.polygon(shape_polygon(o["shape"], cx, cy, r), fill=fill)
    return img.resize((size, size), Image.BOX)


def training_scenes(seed, n):
    """n scenes (with captions) outside the held-out combinations."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        s = sample_scene(rng)
        if not is_held_out(s):
            out.append(s)
    return out


def eval_scenes(seed, n_single, n_two):
    """Held-out scenes: n_single one-object and n_two two-object, all with a background."""
    rng = random.Random(seed)
    single, two = [], []
    while len(single) < n_single or len(two) < n_two:
        s = sample_scene(rng)
        s["say_background"] = True
        if not is_held_out(s):
            continue
        if len(s["objects"]) == 1 and len(single) < n_single:
            single.append(s)
        elif len(s["objects"]) == 2 and len(two) < n_two:
            two.append(s)
    return single + two


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="folder for PNGs and captions.tsv")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-prompts", help="write held-out captions, one a line")
    ap.add_argument("--n-single", type=int, default=60)
    ap.add_argument("--n-two", type=int, default=20)
    ap.add_argument("--held-out", action="store_true",
                    help="--out gets the held-out scenes of --eval-prompts, not training ones")
    a = ap.parse_args()
    if a.eval_prompts:
        with open(a.eval_prompts, "w") as f:
            for s in eval_scenes(a.seed, a.n_single, a.n_two):
                f.write(caption(s) + "\n")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "captions.tsv"), "w") as f:
            scenes = (eval_scenes(a.seed, a.n_single, a.n_two) if a.held_out
                      else training_scenes(a.seed, a.n))
            for i, s in enumerate(scenes):
                name = "%06d.png" % i
                render(s, a.size).save(os.path.join(a.out, name))
                f.write("%s\t%s\n" % (name, caption(s)))


if __name__ == "__main__":
    main()
