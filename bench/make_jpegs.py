#!/usr/bin/python3
"""Writes a small image folder for the data-pipeline benchmark (bench/bench_data.sh):
OUT/train/<class>/*.JPEG and OUT/val/<class>/*.JPEG, images of ImageNet's typical size
(about 500x375, a quarter of them portrait 375x500, sizes jittered by up to 10%) saved
by PIL at quality 90 (4:2:0). The content has ImageNet-like detail at every scale (smooth
colour fields, edges of random shapes, texture and sensor-like noise), so files weigh
about what ILSVRC's do (~105 kB on average; ILSVRC-2012 train: ~110 kB). Deterministic
(fixed seed).

Usage: /usr/bin/python3 bench/make_jpegs.py OUT [TRAIN_IMAGES (400)] [VAL_IMAGES (100)]
       [CLASSES (4)]"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(rng, w, h):
    # low-frequency colour field: a 4x3 random grid upsampled bicubically
    field = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    draw = ImageDraw.Draw(field)
    for _ in range(rng.integers(8, 20)):  # random shapes with hard edges
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=color)
    field = field.filter(ImageFilter.GaussianBlur(1.2))
    a = np.asarray(field).astype(np.float32)
    tex = rng.normal(0, 1, (h // 4 + 1, w // 4 + 1, 1)).astype(np.float32)  # mid-frequency texture
    tex = np.kron(tex, np.ones((4, 4, 1), np.float32))[:h, :w]
    a += 32 * tex + rng.normal(0, 18, (h, w, 3)).astype(np.float32)  # plus fine noise
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    counts = {"train": int(sys.argv[2]) if len(sys.argv) > 2 else 400,
              "val": int(sys.argv[3]) if len(sys.argv) > 3 else 100}
    classes = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    rng = np.random.default_rng(2024)
    total = 0
    for split, n in counts.items():
        for i in range(n):
            cls = f"n{i % classes:08d}"
            d = os.path.join(out, split, cls)
            os.makedirs(d, exist_ok=True)
            w, h = (375, 500) if i % 4 == 3 else (500, 375)
            w, h = int(w * rng.uniform(0.9, 1.1)), int(h * rng.uniform(0.9, 1.1))
            path = os.path.join(d, f"{split}_{i:06d}.JPEG")
            scene(rng, w, h).save(path, quality=90)
            total += os.path.getsize(path)
    n = sum(counts.values())
    print(f"make_jpegs: {n} JPEGs in {out} ({total / n / 1024:.0f} kB on average)")


if __name__ == "__main__":
    main()
