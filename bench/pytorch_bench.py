#!/usr/bin/env python3
"""PyTorch eager on the same cases as Fluxion's bench, for the GPU machine's report.

Times float32 matrix products (TF32 disabled) at N = 256 ... 4096, plain and with the backward
pass's transposed operands (A^T.B and A.B^T, as views), and one training step of the seed GAN
(batch 64), the VAE (batch 128) and the DCGAN (batch 64), defined exactly as in bench/src/models.ts.
Prints the results as JSON in the shape of bench/src/harness.ts's results files and writes them to
bench/results/<date>-<adapter>-pytorch.json (next to the repository's other results, or ./ when
run outside it). Merge them into Fluxion's table and chart with
`pnpm bench ... --with bench/results/<file>.json`.

    python3 bench/pytorch_bench.py [--runs 5] [--device cuda]
"""

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.2


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_runs(fn, device, warmup=2, runs=5, min_run_ms=50.0):
    """Per-repetition median/min/max in ms, like harness.ts's timeRuns."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    once = max((time.perf_counter() - t0) * 1000, 1e-3)
    reps = max(1, min(1000, int(min_run_ms / once + 0.999)))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000 / reps)
    return {
        "medianMs": statistics.median(times),
        "minMs": min(times),
        "maxMs": max(times),
        "runs": runs,
        "reps": reps,
    }


def result(suite, name, backend, timing, metrics):
    return {"suite": suite, "name": name, "engine": "pytorch", "backend": backend, **timing,
            "timing": "wall", "metrics": metrics, "checkedAgainst": "none (reference implementation)"}


# --- the models of bench/src/models.ts -------------------------------------------------------

def dense(i, o, act):
    return ("dense", i, o, act)


def conv(kind, i, o, act):
    return (kind, i, o, act)


GAN = {"name": "gan step", "kind": "gan", "batch": 64, "latent": 100, "adam": (2e-4, 0.5, 0.999, 1e-8),
       "G": [dense(100, 256, "leaky"), dense(256, 512, "leaky"), dense(512, 1024, "leaky"), dense(1024, 784, "tanh")],
       "D": [dense(784, 512, "leaky"), dense(512, 256, "leaky"), dense(256, 1, "none")]}
DCGAN = {"name": "dcgan step", "kind": "gan", "batch": 64, "latent": 100, "adam": (2e-4, 0.5, 0.999, 1e-8),
         "G": [dense(100, 64 * 7 * 7, "relu"), ("reshape", (64, 7, 7)), conv("convT", 64, 32, "relu"),
               conv("convT", 32, 1, "tanh"), ("reshape", (784,))],
         "D": [("reshape", (1, 28, 28)), conv("conv", 1, 32, "leaky"), conv("conv", 32, 64, "leaky"),
               ("reshape", (64 * 7 * 7,)), dense(64 * 7 * 7, 1, "none")]}
VAE = {"name": "vae step", "kind": "vae", "batch": 128, "latent": 20, "adam": (1e-3, 0.9, 0.999, 1e-8),
       "enc": [dense(784, 256, "relu"), dense(256, 128, "relu")], "mu": [dense(128, 20, "none")],
       "logVar": [dense(128, 20, "none")],
       "dec": [dense(20, 128, "relu"), dense(128, 256, "relu"), dense(256, 784, "none")]}


def build(layers):
    """nn.Sequential of the layer list (PyTorch's default initialisation, as models.ts uses)."""
    mods = []
    for layer in layers:
        kind = layer[0]
        if kind == "reshape":
            mods.append(torch.nn.Unflatten(1, layer[1]) if len(layer[1]) == 3 else torch.nn.Flatten())
            continue
        _, i, o, act = layer
        if kind == "dense":
            mods.append(torch.nn.Linear(i, o))
        elif kind == "conv":
            mods.append(torch.nn.Conv2d(i, o, 4, stride=2, padding=1))
        else:
            mods.append(torch.nn.ConvTranspose2d(i, o, 4, stride=2, padding=1))
        if act == "relu":
            mods.append(torch.nn.ReLU())
        elif act == "leaky":
            mods.append(torch.nn.LeakyReLU(LEAKY_SLOPE))
        elif act == "tanh":
            mods.append(torch.nn.Tanh())
    return torch.nn.Sequential(*mods)


def adam(params, spec):
    lr, b1, b2, eps = spec
    return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)


def gan_step_fn(spec, device):
    g, d = build(spec["G"]).to(device), build(spec["D"]).to(device)
    opt_g, opt_d = adam(g.parameters(), spec["adam"]), adam(d.parameters(), spec["adam"])
    b = spec["batch"]
    real = torch.rand(b, 784, device=device) * 2 - 1
    z1, z2 = torch.randn(b, spec["latent"], device=device), torch.randn(b, spec["latent"], device=device)

    def step():
        with torch.no_grad():
            fake = g(z1)
        opt_d.zero_grad(set_to_none=True)
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        g_loss = F.softplus(-d(g(z2))).mean()
        g_loss.backward()
        opt_g.step()
    return step


def vae_step_fn(spec, device):
    enc, mu, lv, dec = (build(spec[k]).to(device) for k in ("enc", "mu", "logVar", "dec"))
    params = [p for m in (enc, mu, lv, dec) for p in m.parameters()]
    opt = adam(params, spec["adam"])
    b = spec["batch"]
    x = torch.rand(b, 784, device=device)
    eps = torch.randn(b, spec["latent"], device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        h = enc(x)
        m, v = mu(h), lv(h)
        logits = dec(m + torch.exp(0.5 * v) * eps)
        recon = (F.softplus(logits) - x * logits).sum()
        kl = -0.5 * (1 + v - m.square() - v.exp()).sum()
        loss = (recon + kl) / b
        loss.backward()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-n", type=int, default=4096)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    backend = device.type
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    adapter = "-".join(re.sub(r"[^a-z0-9]+", "-", re.sub(r"\(.*?\)", " ", name.lower())).strip("-").split("-")[:4])

    results = []
    n = 256
    while n <= args.max_n:
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        for label, fn in (("A·B", lambda: a @ b), ("Aᵀ·B", lambda: a.t() @ b), ("A·Bᵀ", lambda: a @ b.t())):
            t = time_runs(fn, device, runs=args.runs)
            results.append(result("ops", f"matmul {label} {n}", backend, t,
                                  {"GFLOP/s": 2 * n ** 3 / (t["medianMs"] * 1e6)}))
        n *= 2
    for spec, make in ((GAN, gan_step_fn), (VAE, vae_step_fn), (DCGAN, gan_step_fn)):
        t = time_runs(make(spec, device), device, runs=args.runs, min_run_ms=0)
        results.append(result("train", spec["name"], backend, t, {"steps/s": 1000 / t["medianMs"]}))

    date = datetime.datetime.now(datetime.timezone.utc)
    body = {"date": date.isoformat(), "adapter": adapter, "adapterInfo": {"device": name},
            "command": f"python3 bench/pytorch_bench.py --runs {args.runs} --device {args.device}",
            "notes": [f"PyTorch {torch.__version__} eager, float32, TF32 disabled"], "results": results}
    text = json.dumps(body, indent=2, ensure_ascii=False)
    print(text)
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here) if os.path.basename(here) in ("bench", ".gpu") else None
    out_dir = os.path.join(repo, "bench", "results") if repo and os.path.isdir(os.path.join(repo, "bench")) else "."
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{date.date().isoformat()}-{adapter}-pytorch.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
