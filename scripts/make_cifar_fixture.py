#!/usr/bin/env python3
"""Writes the small CIFAR fixtures of tests/c/test_dataset.c in the real binary batch
format (https://www.cs.toronto.edu/~kriz/cifar.html):

  tests/fixtures/cifar-10-batches-bin/  data_batch_1..5.bin (4 records each),
                                        test_batch.bin (10 records), batches.meta.txt
  tests/fixtures/cifar-100-binary/      train.bin (6 records), test.bin (4 records),
                                        fine_label_names.txt

A CIFAR-10 record is 1 label byte then 3072 pixel bytes (the R, G and B planes of a
32x32 image, rows top to bottom); a CIFAR-100 record has a coarse then a fine label
byte before the pixels. Labels and pixels come from Python's random.Random(seed), so
the files are the same on every run. Prints the first labels and pixel sums that the
test hard-codes. Usage: scripts/make_cifar_fixture.py [OUT_DIR] (default
tests/fixtures next to this script's folder)."""
import os
import random
import sys

C10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def records(rng, n, label_bytes, classes):
    out = []
    for _ in range(n):
        fine = rng.randrange(classes)
        labels = bytes([fine]) if label_bytes == 1 else bytes([fine // 5, fine])
        pixels = bytes(rng.randrange(256) for _ in range(3072))
        out.append((fine, labels + pixels, sum(pixels)))
    return out


def write(path, recs):
    with open(path, "wb") as f:
        for _, data, _ in recs:
            f.write(data)
    print(f"{path}: {len(recs)} records; labels {[r[0] for r in recs]}; "
          f"pixel sums {[r[2] for r in recs]}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.normpath(os.path.join(here, "..", "tests", "fixtures"))
    rng = random.Random(20240601)
    c10 = os.path.join(out, "cifar-10-batches-bin")
    os.makedirs(c10, exist_ok=True)
    for b in range(1, 6):
        write(os.path.join(c10, f"data_batch_{b}.bin"), records(rng, 4, 1, 10))
    write(os.path.join(c10, "test_batch.bin"), records(rng, 10, 1, 10))
    with open(os.path.join(c10, "batches.meta.txt"), "w") as f:
        f.write("\n".join(C10_NAMES) + "\n\n")
    c100 = os.path.join(out, "cifar-100-binary")
    os.makedirs(c100, exist_ok=True)
    write(os.path.join(c100, "train.bin"), records(rng, 6, 2, 100))
    write(os.path.join(c100, "test.bin"), records(rng, 4, 2, 100))
    with open(os.path.join(c100, "fine_label_names.txt"), "w") as f:
        f.write("\n".join(f"class_{i:02d}" for i in range(100)) + "\n")


if __name__ == "__main__":
    main()
