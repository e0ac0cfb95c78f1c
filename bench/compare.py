#!/usr/bin/python3
"""libenn beside PyTorch on the same training configurations: runs `enn bench train` (the
library on its Vulkan device) and bench/torch_bench.py's models (the plain PyTorch
transcription of the spec, and torch.nn RNN/GRU/LSTM: cuDNN on an NVIDIA GPU) in the same
process, with the same batch, sequence length and step counts, and prints one line per
configuration and model with the ratio ours / PyTorch.

    /usr/bin/python3 bench/compare.py [--enn build/tools/enn] [--configs paper-mnist ...]
        [--models enn gru ...] [--steps 3] [--warmup 1] [--batch 128] [--seq T]
        [--torch-device cpu|cuda] [--threads N] [--all] [--profile]

The ratio is throughput ours / PyTorch (= PyTorch's ms per step / ours): above 1, libenn
is faster. PyTorch runs float32 with flush-to-zero (torch.set_flush_denormal(True)) and,
on the CPU, as many threads as the machine has cores unless --threads says otherwise.
Combinations `enn bench train` skips on a CPU device (lavapipe: the 188,590-word
vocabulary, T=784, per-sample traces of the larger configurations) are skipped for
PyTorch as well, with a note; --all runs them on both sides.
"""
import argparse
import os
import re
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bench as tb  # noqa: E402

# `enn bench train` model names -> bench/torch_bench.py's.
PEERS = {"enn": "ENN-shared", "enn-per-sample": "ENN-per-sample", "enn-stop": "ENN-stop",
         "rnn": "RNN", "gru": "GRU", "lstm": "LSTM"}
CONFIGS = ["paper-mnist", "paper-lm", "paper-lm-full", "long", "wide"]

RESULT = re.compile(r"^(?P<config>\S+)\s+(?P<model>\S+)\s+(?P<params>\d+)\s+(?P<B>\d+)\s+(?P<T>\d+)\s+"
                    r"(?P<rate>[\d.]+) (?P<unit>samples/s|tokens/s)\s+(?P<ms>[\d.]+)\s+(?P<disp>\d+)\s+"
                    r"(?P<sub>\d+)\s+(?P<sync>[\d.]+)\s+(?P<peak>[\d.]+)\s+(?P<loss>\S+)$")
OTHER = re.compile(r"^(?P<config>\S+)\s+(?P<model>\S+)\s+(?P<what>not available|skipped|failed)(?P<rest>.*)$")


def run_enn(args):
    cmd = [args.enn, "bench", "train", "--config", ",".join(args.configs), "--model", ",".join(args.models),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    if args.seq:
        cmd += ["--seq", str(args.seq)]
    if args.all:
        cmd.append("--all")
    if args.profile:
        cmd.append("--profile")
    print("#", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(proc.stdout, end="", flush=True)
    ours, notes, device = {}, {}, ""
    for line in proc.stdout.splitlines():
        if line.startswith("device: "):
            device = line[len("device: "):]
        m = RESULT.match(line)
        if m:
            ours[(m["config"], m["model"])] = m.groupdict()
            continue
        m = OTHER.match(line)
        if m and m["config"] in CONFIGS:
            notes[(m["config"], m["model"])] = (m["what"] + m["rest"]).strip()
    if proc.returncode != 0:
        print(f"# enn bench train exited with {proc.returncode}", flush=True)
    return ours, notes, device


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enn", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                  "tools", "enn"), help="path of the enn command")
    ap.add_argument("--configs", nargs="*", default=["paper-mnist", "paper-lm", "long", "wide"], choices=CONFIGS)
    ap.add_argument("--models", nargs="*", default=list(PEERS), choices=list(PEERS))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", type=int, default=0, help="override every configuration's sequence length")
    ap.add_argument("--torch-device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--all", action="store_true", help="also what enn bench train skips on CPU devices")
    ap.add_argument("--profile", action="store_true", help="pass --profile to enn bench train")
    args = ap.parse_args()

    ours, notes, device = run_enn(args)

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    targs = argparse.Namespace(steps=args.steps, warmup=args.warmup, batch=args.batch, seq=args.seq,
                               device=args.torch_device)
    where = (torch.cuda.get_device_name(0) if args.torch_device.startswith("cuda")
             else f"CPU, {args.threads} threads")
    print(f"\n# PyTorch {torch.__version__} on {where}, flush-to-zero on, float32", flush=True)
    theirs = {}
    for cname in args.configs:
        for model in args.models:
            key = (cname, model)
            if key in notes and notes[key].startswith("skipped"):
                continue
            try:
                theirs[key] = tb.bench(PEERS[model], cname, tb.CONFIGS[cname], targs, torch.float32)
            except RuntimeError as e:   # e.g. out of memory for the full vocabulary
                theirs[key] = None
                print(f"{cname:14s} {PEERS[model]:15s} failed: {str(e).splitlines()[0]}", flush=True)

    print(f"\n# libenn on {device}; PyTorch on {where}; B={args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up")
    print("# ratio = throughput ours / PyTorch (above 1: libenn is faster)")
    print(f"{'config':14s} {'model':15s} {'T':>4s} {'ours ms/step':>13s} {'torch ms/step':>14s} {'ratio':>7s} "
          f"{'ours rate':>22s} {'disp/step':>9s} {'sync/step':>9s} {'peak MiB':>9s} {'params ours/torch':>20s}")
    for cname in args.configs:
        for model in args.models:
            key = (cname, model)
            o, t = ours.get(key), theirs.get(key)
            if o is None:
                extra = f"; PyTorch {t['ms_per_step']:.1f} ms/step" if t else ""
                print(f"{cname:14s} {model:15s} ours: {notes.get(key, 'no result')}{extra}")
                continue
            tms = f"{t['ms_per_step']:14.1f}" if t else f"{'-':>14s}"
            ratio = f"{t['ms_per_step'] / float(o['ms']):7.3f}" if t else f"{'-':>7s}"
            params = f"{o['params']}/{t['params'] if t else '-'}"
            print(f"{cname:14s} {model:15s} {o['T']:>4s} {float(o['ms']):13.1f} {tms} {ratio} "
                  f"{float(o['rate']):12.1f} {o['unit']:9s} {o['disp']:>9s} {o['sync']:>9s} {o['peak']:>9s} "
                  f"{params:>20s}")


if __name__ == "__main__":
    main()
