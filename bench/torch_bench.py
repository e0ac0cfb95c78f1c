#!/usr/bin/python3
"""Training throughput of the PyTorch peers: the ENN transcription (bench/enn_torch.py) and
torch.nn RNN/GRU/LSTM two-layer baselines built as Keras builds them. One line per model:
samples per second over a few Adam steps (after warm-up), float32.

    /usr/bin/python3 bench/torch_bench.py [--configs paper-mnist long ...] [--models ENN-shared GRU ...]
                                          [--steps 5] [--warmup 1] [--threads 2] [--device cpu|cuda]
                                          [--batch 128] [--seq T]

Configs (B=128 unless --batch):
  paper-mnist   T=28, d=28, h=128, N=64, 10 classes; baselines 128 then 64
  paper-lm      T=32, embedding 128, h=128, N=64, vocabulary 10,000; baselines 128 then 128
  paper-lm-full the same with the paper's vocabulary 188,590 (logits alone are 3 GB in float32)
  lm-head       the output layer alone at paper-lm-full's shapes: R = B*T rows of random features
                (h=128) -> torch.nn.Linear(128, 188590) -> F.cross_entropy(ignore_index=0) -> Adam on
                the layer's weight and bias (no clipping); the last step's targets are padding, as above
  long          T=784, d=1 (MNIST pixel by pixel), h=128, N=64; baselines 128 then 64
  wide          T=28, d=28, h=512, N=256; baselines 512 then 256
Models: ENN-shared (paper mode trace), ENN-per-sample, ENN-stop (shared, stop-gradient trace),
RNN, GRU, LSTM. The ENN uses attention pooling (the library default) and dropout 0.3; the
training step includes Keras's per-weight clipnorm 1.0, as the paper's protocol does."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enn_torch as et  # noqa: E402

CONFIGS = {
    "paper-mnist": dict(model="classifier", T=28, d=28, h=128, N=64, C=10, sizes=(128, 64)),
    "paper-lm": dict(model="lm", T=32, d=128, h=128, N=64, V=10000, sizes=(128, 128)),
    "paper-lm-full": dict(model="lm", T=32, d=128, h=128, N=64, V=188590, sizes=(128, 128)),
    "lm-head": dict(model="lm-head", T=32, d=128, h=128, N=64, V=188590, sizes=(128, 128)),
    "long": dict(model="classifier", T=784, d=1, h=128, N=64, C=10, sizes=(128, 64)),
    "wide": dict(model="classifier", T=28, d=28, h=512, N=256, C=10, sizes=(512, 256)),
}
MODELS = ("ENN-shared", "ENN-per-sample", "ENN-stop", "RNN", "GRU", "LSTM")


def make_task(c):
    if c["model"] == "lm":
        return dict(model="lm", V=c["V"], e=c["d"], lm_input="embedding")
    return dict(model="classifier", C=c["C"], pooling="attention", dropout_rate=0.3)


class LMHead(torch.nn.Module):
    """The language model's output layer alone: features [B, T, h] -> logits -> mean
    cross-entropy over the non-padding targets (id 0 ignored)."""

    def __init__(self, h, V, dtype):
        super().__init__()
        self.out = torch.nn.Linear(h, V, dtype=dtype)

    def forward(self, batch):
        logits = self.out(batch["features"])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 batch["targets"].reshape(-1), ignore_index=0)


def make_model(name, c, dtype):
    if c["model"] == "lm-head":
        return LMHead(c["h"], c["V"], dtype)
    task = make_task(c)
    if name.startswith("ENN"):
        mode = "per_sample" if name == "ENN-per-sample" else "shared"
        grad = "stop" if name == "ENN-stop" else "exact"
        cfg = et.ENNConfig(d=c["d"], h=c["h"], N=c["N"], trace_mode=mode, trace_gradient=grad)
        return et.ENNModel(task, cfg, dtype=dtype)
    return et.BaselineModel(name, dict(task, dropout_rate=0.3), c["d"], c["sizes"], dtype=dtype)


def make_batch(c, B, device, dtype, gen):
    if c["model"] == "lm-head":
        targets = torch.randint(1, c["V"], (B, c["T"]), generator=gen)
        targets[:, -1] = 0
        return {"features": (torch.rand(B, c["T"], c["h"], generator=gen, dtype=dtype) * 2 - 1).to(device),
                "targets": targets.to(device)}
    if c["model"] == "lm":
        tokens = torch.randint(1, c["V"], (B, c["T"]), generator=gen)
        targets = torch.zeros_like(tokens)
        targets[:, :-1] = tokens[:, 1:]
        return {"tokens": tokens.to(device), "targets": targets.to(device)}
    return {"x": torch.rand(B, c["T"], c["d"], generator=gen, dtype=dtype).to(device),
            "labels": torch.randint(0, c["C"], (B,), generator=gen).to(device)}


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(name, cname, c, args, dtype):
    """Times one model; prints its line and returns samples/s, ms/step, parameters and loss."""
    if getattr(args, "seq", 0):
        c = dict(c, T=args.seq)
    torch.manual_seed(0)
    model = make_model(name, c, dtype).to(args.device)
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    nparams = sum(q.numel() for q in params)
    opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
    gen = torch.Generator().manual_seed(1)
    batch = make_batch(c, args.batch, args.device, dtype, gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(batch)
        loss.backward()
        if c["model"] != "lm-head":
            et.clip_each_grad_norm_(params, 1.0)
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    sync(args.device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    sync(args.device)
    dt = time.perf_counter() - t0
    sps = args.batch * args.steps / dt
    if c["model"] == "lm-head":
        name = "Dense+xent"
    print(f"{cname:14s} {name:15s} params {nparams:>10,d}  {sps:10.1f} samples/s  {1e3 * dt / args.steps:9.1f} ms/step"
          f"  loss {float(loss):.4f}", flush=True)
    return dict(samples_per_s=sps, ms_per_step=1e3 * dt / args.steps, params=nparams, loss=float(loss))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="*", default=["paper-mnist", "paper-lm", "long", "wide"],
                    choices=sorted(CONFIGS))
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", type=int, default=0, help="override the sequence length T")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):   # plain fp32 GEMMs, as the library's
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_flush_denormal(True)   # subnormal intermediates slowed the CPU ENN 40x otherwise
    print(f"# torch {torch.__version__}, device {args.device}, threads {args.threads}, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, float32")
    for cname in args.configs:
        for name in args.models:
            bench(name, cname, CONFIGS[cname], args, torch.float32)


if __name__ == "__main__":
    main()
