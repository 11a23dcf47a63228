#!/usr/bin/python3
"""torchvision side of the data-pipeline benchmark (`lunet bench-data`, bench/bench_data.sh).

Runs torchvision's ImageFolder + DataLoader with the PIL pipeline of method.md section 6
over DIR/SPLIT and prints one line per transform:
    train <images/s>      RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize
    eval <images/s>       Resize(256) + CenterCrop(224) + ToTensor + Normalize
Each transform runs EPOCHS epochs (shuffled, batch BATCH, WORKERS worker processes kept
alive across epochs); an epoch is timed from the iterator's creation to its last batch,
and the best epoch is reported (the first one also warms the page cache).

Usage: /usr/bin/python3 bench/torchvision_data.py --dataset_path=DIR [--split=train]
       [--workers=2] [--batch_size=64] [--epochs=2] [--transforms=train,eval]"""
import argparse
import os
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def pipeline(mode):
    if mode == "train":
        steps = [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
    else:
        steps = [transforms.Resize(256), transforms.CenterCrop(224)]
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def run(root, mode, workers, batch, epochs):
    ds = datasets.ImageFolder(root, pipeline(mode))
    dl = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                    persistent_workers=workers > 0)
    best = 0.0
    for _ in range(epochs):
        t0, n = time.perf_counter(), 0
        for images, _ in dl:
            n += images.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset_path", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--transforms", default="train,eval")
    a = p.parse_args()
    torch.manual_seed(0)
    for mode in a.transforms.split(","):
        rate = run(os.path.join(a.dataset_path, a.split), mode, a.workers, a.batch_size, a.epochs)
        print(f"{mode} {rate:.1f}", flush=True)


if __name__ == "__main__":
    main()
