#!/usr/bin/python3
"""libenn beside PyTorch on the same training configurations: runs `enn bench train` (the
library on its Vulkan device) and bench/torch_bench.py's models (the plain PyTorch
transcription of the spec, and torch.nn RNN/GRU/LSTM: cuDNN on an NVIDIA GPU) in the same
process, with the same batch, sequence length and step counts, and prints one line per
configuration and model with the ratio ours / PyTorch. With --rounds R the two sides take
turns R times and each line shows the median ratio and its range over the rounds (each
ratio paired within one round), and, where both ENN trace modes ran, the throughput of the
per-sample trace over the shared one on each side.

    /usr/bin/python3 bench/compare.py [--enn build/tools/enn] [--configs paper-mnist ...]
        [--models enn gru ...] [--steps 3] [--warmup 1] [--batch 128] [--seq T]
        [--rounds R] [--torch-device cpu|cuda] [--threads N] [--all] [--profile]

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
                    r"(?P<sub>\d+)\s+(?P<sync>[\d.]+)\s+(?P<peak>[\d.]+)\s+(?P<loss>\S+)(?:\s+(?P<rec>[\d.]+))?$")
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


def run_torch(args, notes):
    """One pass of every configuration and model in PyTorch: {(config, model): result or None}."""
    targs = argparse.Namespace(steps=args.steps, warmup=args.warmup, batch=args.batch, seq=args.seq,
                               device=args.torch_device)
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
    return theirs


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def spread(values, fmt):
    """'median' for one value, 'median [min-max]' for several."""
    if len(values) == 1:
        return fmt.format(values[0])
    return (fmt + " [" + fmt + "-" + fmt + "]").format(median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enn", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build",
                                                  "tools", "enn"), help="path of the enn command")
    ap.add_argument("--configs", nargs="*", default=["paper-mnist", "paper-lm", "long", "wide"], choices=CONFIGS)
    ap.add_argument("--models", nargs="*", default=list(PEERS), choices=list(PEERS))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two sides this many times; ratios are paired within a round")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", type=int, default=0, help="override every configuration's sequence length")
    ap.add_argument("--torch-device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--all", action="store_true", help="also what enn bench train skips on CPU devices")
    ap.add_argument("--profile", action="store_true", help="pass --profile to enn bench train")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    where = (torch.cuda.get_device_name(0) if args.torch_device.startswith("cuda")
             else f"CPU, {args.threads} threads")
    # Per round: our line and PyTorch's result for every (config, model). Alternating the
    # two sides and pairing each ratio within its round keeps a drifting or briefly busy
    # machine from favouring either side; the spread over rounds shows how much it moved.
    rounds = []
    for r in range(args.rounds):
        if args.rounds > 1:
            print(f"\n# round {r + 1} of {args.rounds}", flush=True)
        ours, notes, device = run_enn(args)
        print(f"\n# PyTorch {torch.__version__} on {where}, flush-to-zero on, float32", flush=True)
        rounds.append((ours, run_torch(args, notes)))

    print(f"\n# libenn on {device}; PyTorch on {where}; B={args.batch}, {args.steps} timed steps after "
          f"{args.warmup} warm-up" + (f", {args.rounds} rounds (median [min-max])" if args.rounds > 1 else ""))
    print("# ratio = throughput ours / PyTorch (above 1: libenn is faster), paired within each round")
    print(f"{'config':14s} {'model':15s} {'T':>4s} {'ours ms/step':>13s} {'torch ms/step':>14s} {'ratio':>22s} "
          f"{'disp/step':>9s} {'sync/step':>9s} {'peak MiB':>9s} {'params ours/torch':>20s}")
    for cname in args.configs:
        for model in args.models:
            key = (cname, model)
            paired = [(o[key], t.get(key)) for o, t in rounds if key in o]
            torch_ms = [t[key]["ms_per_step"] for _, t in rounds if t.get(key)]
            if not paired:
                extra = f"; PyTorch {median(torch_ms):.1f} ms/step" if torch_ms else ""
                print(f"{cname:14s} {model:15s} ours: {notes.get(key, 'no result')}{extra}")
                continue
            last = paired[-1][0]
            ratios = [t["ms_per_step"] / float(o["ms"]) for o, t in paired if t]
            tms = f"{median(torch_ms):14.1f}" if torch_ms else f"{'-':>14s}"
            ratio = spread(ratios, "{:.2f}") if ratios else "-"
            params = f"{last['params']}/{paired[-1][1]['params'] if paired[-1][1] else '-'}"
            print(f"{cname:14s} {model:15s} {last['T']:>4s} {median([float(o['ms']) for o, _ in paired]):13.1f} "
                  f"{tms} {ratio:>22s} {last['disp']:>9s} {last['sync']:>9s} {last['peak']:>9s} {params:>20s}")

    # The per-sample trace's cost on each side: throughput per-sample / shared, same round.
    if "enn" in args.models and "enn-per-sample" in args.models:
        lines = []
        for cname in args.configs:
            pair = (cname, "enn"), (cname, "enn-per-sample")
            ours_r = [float(o[pair[0]]["ms"]) / float(o[pair[1]]["ms"]) for o, _ in rounds
                      if pair[0] in o and pair[1] in o]
            torch_r = [t[pair[0]]["ms_per_step"] / t[pair[1]]["ms_per_step"] for _, t in rounds
                       if t.get(pair[0]) and t.get(pair[1])]
            if ours_r or torch_r:
                lines.append(f"{cname:14s} {spread(ours_r, '{:.2f}') if ours_r else '-':>22s} "
                             f"{spread(torch_r, '{:.2f}') if torch_r else '-':>22s}")
        if lines:
            print("\n# throughput of the per-sample trace / the shared trace, paired within each round")
            print(f"{'config':14s} {'ours':>22s} {'PyTorch':>22s}")
            print("\n".join(lines))


if __name__ == "__main__":
    main()
