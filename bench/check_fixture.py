#!/usr/bin/python3
"""Re-verifies ENN fixtures written by bench/make_fixtures.py:

  1. reproducible: the stored seed draws exactly the stored parameters and inputs, and the
     PyTorch transcription recomputes every stored output and gradient (to 1e-10 relative);
  2. independent forward: a second transcription of the spec in plain numpy (written
     separately from bench/enn_torch.py: concatenated integrator input, clip via np.clip)
     gives the same loss, logits, hidden states, attention and final trace (1e-12 relative);
  3. independent gradient: central finite differences of that numpy forward agree with the
     stored gradients on a few entries of every gradient tensor (stop mode: with the trace
     sequence held fixed, and the H0 gradient must be exactly zero);
  4. with --gradcheck, torch.autograd.gradcheck on the case as well.

    /usr/bin/python3 bench/check_fixture.py [--gradcheck] [FILE.safetensors ...]
(default: every file in tests/data/enn_torch). Exits 1 on any mismatch."""
import argparse
import glob
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enn_torch as et  # noqa: E402
import make_fixtures as mf  # noqa: E402
import safetensors_io  # noqa: E402


# ----------------------------------------------------------------------------------------------
# A second, numpy-only transcription of the spec (forward only)

def np_forward(task, c, P, I, Hs=None):
    """c: the 'cell' config dict. Returns (loss, logits, hs [T,B,h], a [T,B,N], H_T, trace list)."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731

    def ln(v, g, b):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + c["ln_eps"]) * g + b

    def l2n(v):
        return v / np.sqrt(np.maximum((v * v).sum(-1, keepdims=True), 1e-12))

    def softmax(v, axis):
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    x = I["x"] if "x" in I else P["embedding.table"][I["tokens"]]
    B, T = x.shape[0], x.shape[1]
    shared = c["trace_mode"] == "shared"
    h, H = I["h0"], I["H0"]
    hs, attn, trace = [], [], []
    tau_e = c["tau"] / (1 + 10 * c["lam"])
    for t in range(T):
        trace.append(H)
        z = relu(x[:, t] @ P["W_z"] + P["b_z"])
        if c["layer_norm"]:
            z = ln(z, P["ln1.gain"], P["ln1.bias"])
        E = P["M"] + c["alpha"] * (H if Hs is None else Hs[t])
        zn, En = l2n(z), l2n(E)
        if shared:
            a = softmax(zn @ En.T / tau_e, 1)
            m = a @ E
        else:
            a = softmax(np.einsum("bh,bnh->bn", zn, En) / tau_e, 1)
            m = np.einsum("bn,bnh->bh", a, E)
        u = relu(np.concatenate([z, m, h], axis=1) @ P["W_u"] + P["b_u"])
        hn = relu(u @ P["W_o"] + P["b_o"])
        if c["layer_norm"]:
            hn = ln(hn, P["ln2.gain"], P["ln2.bias"])
        dH = np.einsum("bn,bh->nh", a, z) / B if shared else a[:, :, None] * z[:, None, :]
        H = np.clip((1 - c["eta"]) * H + c["eta"] * (dH + I["xi"][t]), -0.1, 0.1)
        h = hn
        hs.append(hn)
        attn.append(a)
    hs = np.stack(hs)
    if task["model"] == "classifier":
        if task["pooling"] == "attention":
            s = np.tanh(hs @ P["pool.w"] + P["pool.b"])          # [T,B]
            w = softmax(s, 0)
            ctx = (w[:, :, None] * hs).sum(0)
        else:
            ctx = hs[-1]
        ctx = ctx * I["keep_mask"] / (1 - task["dropout_rate"])
        logits = ctx @ P["out.W"] + P["out.b"]
        lp = np.log(softmax(logits, 1))
        loss = -lp[np.arange(B), I["labels"]].mean()
    elif task["model"] == "regressor":
        feat = hs[-1] if task["regressor_output"] == "last" else hs.transpose(1, 0, 2)
        logits = feat @ P["out.W"] + P["out.b"]
        loss = ((logits - I["targets"]) ** 2).mean()
    else:
        logits = hs.transpose(1, 0, 2) @ P["out.W"] + P["out.b"]
        lp = np.log(softmax(logits, 2))
        tg = I["targets"]
        picked = np.take_along_axis(lp, tg[..., None].astype(np.int64), 2)[..., 0]
        keep = tg != 0
        loss = -(picked * keep).sum() / keep.sum()
    return loss, logits, hs, np.stack(attn), H, trace


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / (1.0 + np.max(np.abs(b)))) if a.size else 0.0


def check_baseline(path, tensors, conf, gradcheck, fd_entries=3, verbose=True):
    """A baseline fixture: redrawn from its seed, recomputed, and finite differences of the
    torch forward (float64) on a few entries of each gradient."""
    kind, task = conf["baseline"]["kind"], conf["task"]
    P = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    I = {k[len("input."):]: v for k, v in tensors.items() if k.startswith("input.")}
    problems = []
    P2, I2 = mf.baseline_draw(kind, task, conf["seed"])
    for k in set(P) | set(P2) | set(I) | set(I2):
        a, b = (P, P2) if k in P or k in P2 else (I, I2)
        if k not in a or k not in b or not np.array_equal(a[k], b[k]):
            problems.append(f"{k} is not what seed {conf['seed']} draws")
    res = mf.baseline_compute(kind, task, P, I)
    stored = {k: v for k, v in tensors.items() if k.startswith(("out.", "grad."))}
    if set(res) != set(stored):
        problems.append(f"tensor names differ: {sorted(set(res) ^ set(stored))}")
    worst_repro = max([rel_err(res[k], stored[k]) for k in set(res) & set(stored)] or [0.0])
    if worst_repro > 1e-10:
        problems.append(f"recomputed tensors differ by {worst_repro:.2e}")

    def loss():
        p, i = mf.to_torch(P, I)
        with torch.no_grad():
            return float(mf.baseline_forward(kind, task, p, i)["loss"])

    rng = np.random.default_rng(0)
    worst_fd = 0.0
    for gname in sorted(k for k in stored if k.startswith("grad.")):
        key = gname[len("grad."):]
        src, k = (I, key[len("input."):]) if key.startswith("input.") else (P, key)
        g = stored[gname]
        for fi in rng.choice(g.size, size=min(fd_entries, g.size), replace=False):
            idx = np.unravel_index(fi, g.shape)
            orig = src[k][idx]
            step = 1e-6 * max(1.0, abs(orig))
            src[k][idx] = orig + step
            lp = loss()
            src[k][idx] = orig - step
            lm = loss()
            src[k][idx] = orig
            fd = (lp - lm) / (2 * step)
            err = abs(fd - g[idx]) / max(1e-3, abs(fd) + abs(g[idx]))
            worst_fd = max(worst_fd, err)
            if err > 1e-5:
                problems.append(f"{gname}{list(idx)}: stored {g[idx]:.9g}, finite difference {fd:.9g}")
    gc = ""
    if gradcheck:
        ok = mf.baseline_gradcheck(kind, task, P, I)
        gc = " gradcheck " + ("ok" if ok else "FAILED")
        if not ok:
            problems.append("gradcheck failed")
    if verbose:
        status = "ok" if not problems else "FAILED"
        print(f"{os.path.basename(path):44s} {status}: recompute {worst_repro:.1e} finite differences {worst_fd:.1e}{gc}")
        for p in problems:
            print("   ", p)
    return not problems


def check(path, gradcheck, fd_entries=3, verbose=True):
    tensors, meta = safetensors_io.read(path)
    conf = json.loads(meta["config"])
    if "baseline" in conf:
        return check_baseline(path, tensors, conf, gradcheck, fd_entries, verbose)
    task, cell = conf["task"], conf["cell"]
    cfg = et.ENNConfig(**cell)
    P = {k[len("param."):]: v for k, v in tensors.items() if k.startswith("param.")}
    I = {k[len("input."):]: v for k, v in tensors.items() if k.startswith("input.")}
    problems = []

    # 1. reproducible
    P2, I2 = mf.draw(task, cfg, conf["seed"], **conf["draw"])
    for k in set(P) | set(P2):
        if k not in P or k not in P2 or not np.array_equal(P[k], P2[k]):
            problems.append(f"param.{k} is not what seed {conf['seed']} draws")
    for k in set(I) | set(I2):
        if k not in I or k not in I2 or not np.array_equal(I[k], I2[k]):
            problems.append(f"input.{k} is not what seed {conf['seed']} draws")
    res = mf.compute(task, cfg, P, I)
    stored = {k: v for k, v in tensors.items() if k.startswith(("out.", "grad."))}
    if set(res) != set(stored):
        problems.append(f"tensor names differ: {sorted(set(res) ^ set(stored))}")
    worst_repro = 0.0
    for k in set(res) & set(stored):
        e = rel_err(res[k], stored[k])
        worst_repro = max(worst_repro, e)
        if e > 1e-10:
            problems.append(f"{k}: recomputed differs by {e:.2e}")

    # 2. independent forward
    loss, logits, hs, a, H_T, trace = np_forward(task, cell, P, I)
    worst_fwd = 0.0
    for k, v in (("out.loss", np.array([loss])), ("out.logits", logits), ("out.hs", hs), ("out.a", a),
                 ("out.H_T", H_T)):
        e = rel_err(v, stored[k])
        worst_fwd = max(worst_fwd, e)
        if e > 1e-12:
            problems.append(f"{k}: numpy forward differs by {e:.2e}")

    # 3. finite differences of the numpy forward on a few entries of each gradient
    rng = np.random.default_rng(0)
    stop = cell["trace_gradient"] == "stop"
    Hs = trace if stop else None
    worst_fd = 0.0
    for gname in sorted(k for k in stored if k.startswith("grad.")):
        key = gname[len("grad."):]
        if key.startswith("input."):
            src, k = I, key[len("input."):]
        else:
            src, k = P, key
        g = stored[gname]
        if stop and key == "input.H0":
            if np.any(g != 0):
                problems.append("grad.input.H0 is not zero in stop mode")
            continue
        flat_idx = rng.choice(g.size, size=min(fd_entries, g.size), replace=False)
        for fi in flat_idx:
            idx = np.unravel_index(fi, g.shape)
            orig = src[k][idx]
            step = 1e-6 * max(1.0, abs(orig))
            src[k][idx] = orig + step
            lp = np_forward(task, cell, P, I, Hs)[0]
            src[k][idx] = orig - step
            lm = np_forward(task, cell, P, I, Hs)[0]
            src[k][idx] = orig
            fd = (lp - lm) / (2 * step)
            err = abs(fd - g[idx]) / max(1e-3, abs(fd) + abs(g[idx]))
            worst_fd = max(worst_fd, err)
            if err > 1e-5:
                problems.append(f"{gname}{list(idx)}: stored {g[idx]:.9g}, finite difference {fd:.9g}")

    gc = ""
    if gradcheck:
        ok = mf.gradcheck_case(task, cfg, P, I)
        gc = " gradcheck " + ("ok" if ok else "FAILED")
        if not ok:
            problems.append("gradcheck failed")
    if verbose:
        status = "ok" if not problems else "FAILED"
        print(f"{os.path.basename(path):44s} {status}: recompute {worst_repro:.1e} numpy forward {worst_fwd:.1e} "
              f"finite differences {worst_fd:.1e}{gc}")
        for p in problems:
            print("   ", p)
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--gradcheck", action="store_true")
    args = ap.parse_args()
    files = args.files or sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                        "data", "enn_torch", "*.safetensors")))
    if not files:
        print("no fixtures found")
        return 1
    torch.set_default_dtype(torch.float64)
    ok = all([check(f, args.gradcheck) for f in files])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
