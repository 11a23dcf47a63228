"""PyTorch side of the convolution benchmark (see bench/run.sh and bench/bench_conv.c).

Times forward + backward (gradients to x and w, no bias) of the same conv shapes as
bench_conv.c on the CPU in float32 and prints one line per shape:
    <name> <median total ms> <median forward ms> <median backward ms>
Usage: /usr/bin/python3 bench/torch_conv.py [threads] [iterations]
"""
import sys
import time

import torch
import torch.nn.functional as F

# name, N, Cin, H, W, Cout, K, stride, pad  (must match SHAPES in bench_conv.c)
SHAPES = [
    ("r56_stem_3to16_32", 128, 3, 32, 32, 16, 3, 1, 1),
    ("r56_16to16_32", 128, 16, 32, 32, 16, 3, 1, 1),
    ("r56_16to32_s2", 128, 16, 32, 32, 32, 3, 2, 1),
    ("r56_32to32_16", 128, 32, 16, 16, 32, 3, 1, 1),
    ("r56_32to64_s2", 128, 32, 16, 16, 64, 3, 2, 1),
    ("r56_64to64_8", 128, 64, 8, 8, 64, 3, 1, 1),
    ("r34_64to64_56_b32", 32, 64, 56, 56, 64, 3, 1, 1),
]


def bench(n, cin, h, w, cout, k, stride, pad, iters, warmup):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, cin, h, w, generator=g, requires_grad=True)
    wt = torch.randn(cout, cin, k, k, generator=g, requires_grad=True)
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    gy = torch.randn(n, cout, oh, ow, generator=g)
    tot, fwd, bwd = [], [], []
    for i in range(warmup + iters):
        x.grad = None
        wt.grad = None
        t0 = time.perf_counter()
        y = F.conv2d(x, wt, None, stride, pad)
        t1 = time.perf_counter()
        y.backward(gy)
        t2 = time.perf_counter()
        del y
        if i >= warmup:
            tot.append((t2 - t0) * 1e3)
            fwd.append((t1 - t0) * 1e3)
            bwd.append((t2 - t1) * 1e3)
    return [sorted(v)[len(v) // 2] for v in (tot, fwd, bwd)]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    torch.set_num_threads(threads)
    print("# torch %s mkldnn=%s threads=%d" % (torch.__version__, torch.backends.mkldnn.is_available(),
                                            torch.get_num_threads()))
    for name, *shape in SHAPES:
        print("%s %.3f %.3f %.3f" % (name, *bench(*shape, iters=iters, warmup=3)), flush=True)


if __name__ == "__main__":
    main()
