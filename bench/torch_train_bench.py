#!/usr/bin/python3
"""PyTorch eager reference of `lunet bench` (issue 6): training images/s of one model of
bench/torch_models.py on synthetic data, the ratio's denominator.

A fixed batch (randn images, random labels) is made once on the device; SGD(lr 0.1,
momentum 0.9, weight decay 1e-4); a step is zero_grad, forward, cross_entropy +
lambdaR * orthogonality penalty (models with shared bases; 0 otherwise), backward,
optimizer step. After `--warmup` steps the device is synchronised and `--steps` steps
are timed. fp32, NCHW, TF32 off, cudnn.benchmark on. Prints
    torch <model> batch <B> device <dev>: <img/s> img/s (<ms> ms/step)
or with --json one JSON object on stdout (the line then goes to stderr).

    /usr/bin/python3 bench/torch_train_bench.py --model ResNet50_SharedSingle --device cuda
    /usr/bin/python3 bench/torch_train_bench.py --check shared/reference/models.json \\
        --keys shared/reference/authors-keys

--check builds every model of torch_models.MODELS on the CPU (no step) and compares,
for each ILSVRC entry of models.json it defines, the parameter count (shared tensors
once), the number of shared basis tensors and BN running-buffer elements, and the
state_dict (keys in order, shapes, and which keys hold the same tensor) against the
authors' ilsvrc_<model>[_S<s>U<u>].tsv when there is one. Exit status 1 on any
mismatch. Works with PyTorch 1.13 and 2.x.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402  (bench/ is not a package)


def disable_tf32():
    """TF32 off for matmuls and convolutions: the fp32_precision settings where the
    PyTorch has them (2.9+, where the legacy allow_tf32 flags are deprecated), else the
    allow_tf32 flags. (torch.backends.cuda.matmul raises AssertionError, not
    AttributeError, for unknown names in 1.13, so the test is on torch.backends.)"""
    if hasattr(torch.backends, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def device_name(dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    import platform
    return platform.processor() or platform.machine()


def bench(args):
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("torch_train_bench: no CUDA device visible to PyTorch")
        torch.cuda.set_device(dev)
        disable_tf32()
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    model = torch_models.build(args.model, args.shared_rank, args.unique_rank).to(dev)
    model.train()
    lambda_r = args.lambdaR if torch_models.has_shared_basis(args.model) else 0.0
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=dev)
    y = torch.randint(0, 1000, (args.batch_size,), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        if lambda_r != 0:
            loss = loss + lambda_r * torch_models.orthogonality(model)
        loss.backward()
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(args.warmup):
        loss = step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync()
    elapsed = time.perf_counter() - t0
    final_loss = float(loss)
    if final_loss != final_loss:
        sys.exit("torch_train_bench: the loss became NaN")
    ms = elapsed * 1e3 / args.steps
    ips = args.batch_size * args.steps / elapsed
    line = "torch %s batch %d device %s: %.1f img/s (%.2f ms/step)" % (
        args.model, args.batch_size, args.device, ips, ms)
    if not args.json:
        print(line)
        return 0
    print(line, file=sys.stderr)
    out = {
        "model": args.model, "batch_size": args.batch_size, "device": args.device,
        "steps": args.steps, "warmup": args.warmup, "image_size": args.image_size,
        "images_per_s": ips, "ms_per_step": ms, "lambdaR": lambda_r,
        "torch": torch.__version__, "device_name": device_name(dev), "loss": final_loss,
    }
    if torch_models.takes_ranks(args.model):
        out["shared_rank"] = args.shared_rank or torch_models.DEFAULT_RANKS[0]
        out["unique_rank"] = args.unique_rank or torch_models.DEFAULT_RANKS[1]
    print(json.dumps(out))
    return 0


# ---------------------------------------------------------------------- --check
def read_keys(path):
    """[(key, shape tuple, first key of the same tensor or None)] of an authors' .tsv."""
    rows = []
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 3:
                continue
            shape = () if cols[1] == "scalar" else tuple(int(d) for d in cols[1].split("x"))
            same = None
            if len(cols) > 3 and cols[3].startswith("same tensor as "):
                same = cols[3][len("same tensor as "):]
            rows.append((cols[0], shape, same))
    return rows


def compare_keys(model, rows):
    """Problems (strings) between model.state_dict() and the .tsv rows."""
    sd = model.state_dict(keep_vars=True)
    keys = list(sd)
    want = [r[0] for r in rows]
    if keys != want:
        missing = [k for k in want if k not in sd]
        extra = [k for k in keys if k not in set(want)]
        if missing or extra:
            return ["missing %s, extra %s" % (missing[:4], extra[:4])]
        first = next(i for i, (a, b) in enumerate(zip(keys, want)) if a != b)
        return ["key order differs at %d: %s vs %s" % (first, keys[first], want[first])]
    problems = []
    first_of = {}
    for key, shape, same in rows:
        t = sd[key]
        if tuple(t.shape) != shape:
            problems.append("%s shape %s vs %s" % (key, tuple(t.shape), shape))
        owner = first_of.setdefault(id(t), key)
        if (same or key) != owner:
            problems.append("%s shares %s, the .tsv says %s" % (key, owner, same or "none"))
    return problems


def check(args):
    with open(args.check) as f:
        entries = [e for e in json.load(f)["models"] if e["dataset"] == "ilsvrc"]
    failed = False
    for name in torch_models.MODELS:
        mine = [e for e in entries if e["model"] == name]
        if not mine:
            print("%-26s no entry in %s" % (name, args.check))
            failed = True
        for e in mine:
            s, u = e.get("shared_rank"), e.get("unique_rank")
            label = name + ("_S%dU%d" % (s, u) if s is not None else "")
            model = torch_models.build(name, s, u)
            params = sum(p.numel() for p in model.parameters())
            nbases = sum(len(t) for avg in model.orthogonality_groups for t in avg)
            bn_bufs = sum(b.numel() for n, b in model.named_buffers() if "running_" in n)
            bad = []
            if params != e["params"]:
                bad.append("params")
            if nbases != e["shared_basis_tensors"]:
                bad.append("shared basis tensors %d vs %d" % (nbases, e["shared_basis_tensors"]))
            if bn_bufs != e["bn_running_buffers"]:
                bad.append("BN buffers %d vs %d" % (bn_bufs, e["bn_running_buffers"]))
            keys = "keys: not checked"
            if args.keys:
                keys = "keys: no .tsv"
                path = os.path.join(args.keys, "ilsvrc_%s.tsv" % label)
                if os.path.exists(path):
                    problems = compare_keys(model, read_keys(path))
                    keys = "keys %s" % ("equal" if not problems else "DIFFER")
                    bad += problems
            print("%-30s params %9d vs %9d  %s  %s" % (
                label, params, e["params"], keys, "ok" if not bad else "MISMATCH"))
            for b in bad:
                print("    " + b)
            failed = failed or bool(bad)
    return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=list(torch_models.MODELS))
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--lambdaR", type=float, default=10.0)
    p.add_argument("--shared_rank", type=int)
    p.add_argument("--unique_rank", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", metavar="MODELS_JSON")
    p.add_argument("--keys", metavar="DIR", help="the authors-keys folder (with --check)")
    args = p.parse_args()
    if args.check:
        return check(args)
    if args.model is None:
        p.error("--model is required (or --check MODELS_JSON)")
    if (args.shared_rank or args.unique_rank) and not torch_models.takes_ranks(args.model):
        p.error("%s takes no --shared_rank/--unique_rank" % args.model)
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0 or args.image_size < 32:
        p.error("need batch_size >= 1, steps >= 1, warmup >= 0, image_size >= 32")
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
