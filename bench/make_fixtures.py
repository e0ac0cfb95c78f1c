#!/usr/bin/python3
"""Gradient fixtures for the ENN and the RNN/GRU/LSTM baselines, computed in float64 by the PyTorch transcription
(bench/enn_torch.py) and written as safetensors into tests/data/enn_torch/<case>.safetensors.
The C double-precision reference and the GPU engine are tested against them (llm.c's approach).

    /usr/bin/python3 bench/make_fixtures.py [--out DIR] [--no-gradcheck] [--only CASE ...]

Parameters and inputs are drawn with numpy from a seed stored in the file. The seed of a case
is the first one (counting up from crc32 of its name) whose forward pass stays clear of the
non-differentiable points by a margin (no ReLU input, no unclipped trace value and no squared
norm within MARGIN of its kink), so that a float32 engine cannot land on the other side of a
kink than float64 did; clipping cases must also clip some trace entries.
The baseline cases (base_*) run torch.nn.RNN/GRU/LSTM (torch's own cells, float64) on weights drawn
in libenn's Keras layout and mapped to torch's, so the fixtures hold libenn's names and layout.
See bench/README.md for the tensor names."""
import argparse
import json
import os
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import enn_torch as et  # noqa: E402
import safetensors_io  # noqa: E402

MARGIN = 1e-4
SHAPES = dict(B=3, T=5, d=4, h=6, N=7)
DIFF_INPUTS = ("x", "h0", "H0")   # inputs that get a gradient (when present and floating)


def case_list():
    """(name, task, cfg keyword arguments, draw options) for every fixture."""
    cases = []
    for ln in (1, 0):
        for mode in ("shared", "per_sample"):
            for grad in ("exact", "stop"):
                for pooling in ("attention", "last"):
                    cases.append((f"cls_ln{ln}_{mode}_{grad}_{pooling}",
                                  dict(model="classifier", C=3, pooling=pooling, dropout_rate=0.3),
                                  dict(layer_norm=bool(ln), trace_mode=mode, trace_gradient=grad), {}))
    # Large eta, noise and initial trace, non-default alpha/tau/lambda: many entries clip.
    clip_hp = dict(eta=0.5, alpha=1.0, tau=0.8, lam=0.2)
    clip_draw = dict(sigma=0.1, H0_scale=0.1, clip=True)
    cases.append(("cls_clip_shared_exact_attention", dict(model="classifier", C=3, pooling="attention",
                  dropout_rate=0.3), dict(trace_mode="shared", trace_gradient="exact", **clip_hp), clip_draw))
    cases.append(("cls_clip_per_sample_exact_last", dict(model="classifier", C=3, pooling="last",
                  dropout_rate=0.3), dict(trace_mode="per_sample", trace_gradient="exact", **clip_hp), clip_draw))
    cases.append(("cls_clip_shared_stop_attention", dict(model="classifier", C=3, pooling="attention",
                  dropout_rate=0.3), dict(trace_mode="shared", trace_gradient="stop", **clip_hp), clip_draw))
    for output in ("last", "sequence"):
        cases.append((f"reg_{output}", dict(model="regressor", k=2, regressor_output=output),
                       dict(trace_mode="shared", trace_gradient="exact"), {}))
    cases.append(("lm_embedding", dict(model="lm", V=11, e=5, lm_input="embedding"),
                  dict(trace_mode="shared", trace_gradient="exact"), {}))
    cases.append(("lm_embedding_per_sample_stop", dict(model="lm", V=11, e=5, lm_input="embedding"),
                  dict(trace_mode="per_sample", trace_gradient="stop"), {}))
    cases.append(("lm_float", dict(model="lm", V=11, lm_input="float"),
                  dict(trace_mode="shared", trace_gradient="exact"), {}))
    return cases


def make_cfg(task, cfg_kwargs):
    d = SHAPES["d"]
    if task["model"] == "lm":
        d = task["e"] if task["lm_input"] == "embedding" else 1
    return et.ENNConfig(d=d, h=SHAPES["h"], N=SHAPES["N"], **cfg_kwargs)


def draw(task, cfg, seed, sigma=0.001, H0_scale=0.01, clip=False):
    """Deterministic parameters and inputs (numpy, float64). Scales keep ReLUs mostly alive and
    every term of the gradient visible (non-zero biases, gains away from 1)."""
    rng = np.random.default_rng(seed)
    B, T, h, N = SHAPES["B"], SHAPES["T"], cfg.h, cfg.N
    params = {}
    for name, shape in et.param_shapes(task, cfg).items():
        if name in ("W_z", "W_u", "W_o"):
            v = rng.normal(0.0, np.sqrt(2.0 / shape[0]), shape)
        elif name == "M":
            lim = np.sqrt(6.0 / (shape[0] + shape[1]))
            v = rng.uniform(-lim, lim, shape)
        elif name.startswith("b_"):
            v = rng.uniform(-0.1, 0.3, shape)
        elif name.endswith(".gain"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(".bias") or name == "out.b":
            v = rng.uniform(-0.2, 0.2, shape)
        else:   # pool.w, pool.b, out.W, embedding.table
            v = rng.normal(0.0, 0.5, shape)
        params[name] = v
    trace_shape = (N, h) if cfg.trace_mode == "shared" else (B, N, h)
    inputs = {}
    if task["model"] == "lm":
        V = task["V"]
        tokens = rng.integers(1, V, (B, T))
        tokens[1, T - 2:] = 0                      # a padded tail
        targets = np.zeros_like(tokens)
        targets[:, :-1] = tokens[:, 1:]            # shifted by one, last target pad 0
        targets[2, 1] = 0                          # and one padding target inside a span
        inputs["tokens"] = tokens.astype(np.int32)
        inputs["targets"] = targets.astype(np.int32)
        if task["lm_input"] == "float":
            inputs["x"] = tokens.astype(np.float64)[..., None]   # what the model sees
    else:
        inputs["x"] = rng.normal(0.0, 1.0, (B, T, cfg.d))
    inputs["h0"] = rng.normal(0.0, 0.1, (B, h))
    if clip:
        inputs["H0"] = rng.uniform(-H0_scale, H0_scale, trace_shape)
    else:
        inputs["H0"] = rng.normal(0.0, H0_scale, trace_shape)
    inputs["xi"] = rng.normal(0.0, sigma, (T,) + trace_shape)
    if task["model"] == "classifier":
        inputs["keep_mask"] = (rng.uniform(size=(B, h)) >= task["dropout_rate"]).astype(np.float64)
        inputs["labels"] = rng.integers(0, task["C"], B).astype(np.int32)
    elif task["model"] == "regressor":
        tshape = (B, task["k"]) if task["regressor_output"] == "last" else (B, T, task["k"])
        inputs["targets"] = rng.normal(0.0, 1.0, tshape)
    return params, inputs


def to_torch(params, inputs):
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    inp = {}
    for k, v in inputs.items():
        if v.dtype.kind in "iu":
            inp[k] = torch.tensor(v, dtype=torch.int64)
        else:
            inp[k] = torch.tensor(v, dtype=torch.float64, requires_grad=k in DIFF_INPUTS)
    return p, inp


def forward(task, cfg, p, inp, trace_consts=None):
    return et.model_forward(task, p, inp, cfg, trace_consts)


def compute(task, cfg, params, inputs):
    """Float64 outputs and gradients of the loss, as numpy arrays keyed by fixture name."""
    p, inp = to_torch(params, inputs)
    out = forward(task, cfg, p, inp)
    leaves = [(f"grad.{k}", v) for k, v in p.items()]
    leaves += [(f"grad.input.{k}", inp[k]) for k in DIFF_INPUTS if k in inp]
    grads = torch.autograd.grad(out["loss"], [v for _, v in leaves], allow_unused=True)
    res = {}
    for k, v in out.items():
        v = v.detach().numpy()
        res[f"out.{k}"] = v.reshape(1) if k == "loss" else v
    for (name, leaf), g in zip(leaves, grads):
        res[name] = np.zeros(leaf.shape) if g is None else g.numpy()
    return res


class KinkRecorder:
    """Records, during one forward pass, how close the computation comes to its kinks: ReLU
    inputs near 0, unclipped trace values near +-0.1, squared norms near the 1e-12 floor; and
    how many trace entries were clipped."""

    def __init__(self):
        self.relu_min = np.inf
        self.clip_min = np.inf
        self.l2_min = np.inf
        self.clipped = 0

    def __enter__(self):
        self.saved = (et.relu, et.clip_by_value, et.l2_normalize)
        relu, clip, l2 = self.saved

        def relu_rec(x):
            self.relu_min = min(self.relu_min, float(x.detach().abs().min()))
            return relu(x)

        def clip_rec(v, lo, hi):
            vd = v.detach()
            self.clip_min = min(self.clip_min, float(torch.minimum((vd - lo).abs(), (vd - hi).abs()).min()))
            self.clipped += int(((vd < lo) | (vd > hi)).sum())
            return clip(v, lo, hi)

        def l2_rec(x):
            self.l2_min = min(self.l2_min, float((x.detach() ** 2).sum(-1).min()))
            return l2(x)

        et.relu, et.clip_by_value, et.l2_normalize = relu_rec, clip_rec, l2_rec
        return self

    def __exit__(self, *exc):
        et.relu, et.clip_by_value, et.l2_normalize = self.saved


def choose_seed(name, task, cfg, draw_opts):
    base = zlib.crc32(name.encode())
    for k in range(200):
        seed = base + k
        params, inputs = draw(task, cfg, seed, **draw_opts)
        p, inp = to_torch(params, inputs)
        with torch.no_grad(), KinkRecorder() as rec:
            forward(task, cfg, p, inp)
        ok = rec.relu_min > MARGIN and rec.clip_min > MARGIN and rec.l2_min > MARGIN
        ok = ok and (rec.clipped > 0) == bool(draw_opts.get("clip", False))
        if ok:
            return seed, params, inputs, rec
    raise RuntimeError(f"{name}: no seed keeps clear of the kinks")


def metadata(name, task, cfg, seed, draw_opts, rec):
    config = {"case": name, "task": task, "cell": cfg.to_dict(), "B": SHAPES["B"], "T": SHAPES["T"],
              "seed": seed, "draw": draw_opts, "sigma": draw_opts.get("sigma", 0.001), "trace_clip": et.TRACE_CLIP,
              "l2_eps": et.L2_EPS, "clipped_trace_entries": rec.clipped,
              "layout": {"x": "[B,T,d]", "tokens": "[B,T]", "hs": "[T,B,h]", "a": "[T,B,N]",
                         "xi": "[T,N,h] shared, [T,B,N,h] per_sample", "logits": "classifier [B,C]; "
                         "regressor [B,k] or [B,T,k]; lm [B,T,V]", "loss": "[1]"}}
    return {"config": json.dumps(config, sort_keys=True), "generator": "bench/make_fixtures.py",
            "torch": torch.__version__}


def fixture_tensors(params, inputs, results):
    t = {f"param.{k}": v for k, v in params.items()}
    t.update({f"input.{k}": v for k, v in inputs.items()})
    t.update(results)
    return t


def gradcheck_case(task, cfg, params, inputs):
    """torch.autograd.gradcheck of the loss with respect to every parameter and differentiable
    input. Stop mode is checked as what it claims to be: the exact gradient of the model in
    which the trace each step reads is a constant input (precomputed values)."""
    p, inp = to_torch(params, inputs)
    consts = None
    if cfg.trace_gradient == "stop":
        consts = et.trace_sequence(p, et.model_x(task, p, inp), inp["h0"], inp["H0"], inp["xi"], cfg)
        # the stop-mode autograd gradient must equal the constant-trace model's gradient
        stop = compute(task, cfg, params, inputs)
        pc, ic = to_torch(params, inputs)
        outc = forward(task, cfg, pc, ic, trace_consts=consts)
        names = list(pc)
        gc = torch.autograd.grad(outc["loss"], [pc[k] for k in names])
        for k, g in zip(names, gc):
            assert np.allclose(stop[f"grad.{k}"], g.numpy(), rtol=1e-12, atol=1e-15), k
    names = list(p) + [k for k in DIFF_INPUTS if k in inp and inp[k].requires_grad
                       and not (cfg.trace_gradient == "stop" and k == "H0")]
    tensors = [p[k] if k in p else inp[k] for k in names]

    def f(*vals):
        p2, i2 = dict(p), dict(inp)
        for k, v in zip(names, vals):
            (p2 if k in p else i2)[k] = v
        return forward(task, cfg, p2, i2, trace_consts=consts)["loss"]

    return torch.autograd.gradcheck(f, tensors, eps=1e-6, atol=1e-8, rtol=1e-6)


GRADCHECK_CASES = ("cls_ln1_shared_exact_attention", "cls_ln0_per_sample_exact_last",
                   "cls_clip_shared_exact_attention", "cls_ln1_shared_stop_attention", "lm_embedding",
                   "lm_float", "reg_sequence")


def self_test():
    """The gradient conventions at the kinks, independent of the torch version."""
    v = torch.tensor([-0.2, -0.1, 0.05, 0.1, 0.2], requires_grad=True)
    et.clip_by_value(v, -0.1, 0.1).sum().backward()
    assert v.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0], v.grad   # bounds pass gradient (TF)
    r = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    et.relu(r).sum().backward()
    assert r.grad.tolist() == [0.0, 0.0, 1.0], r.grad


# ----------------------------------------------------------------------------------------------
# Baselines: two stacked torch.nn layers (Keras semantics, see enn_torch.BaselineModel) and a head

BASELINE_UNITS = (6, 5)
BASELINE_GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# torch's gate blocks, as indices of Keras's: LSTM i,f,g,o = Keras i,f,c,o; GRU torch r,z,n
# against Keras z,r,h.
TORCH_GATE_ORDER = {"rnn": [0], "gru": [1, 0, 2], "lstm": [0, 1, 2, 3]}


def baseline_case_list():
    """(name, kind, task) for every baseline fixture."""
    cases = []
    for kind in ("rnn", "gru", "lstm"):
        cases.append((f"base_{kind}_cls_last", kind, dict(model="classifier", C=3, pooling="last", dropout_rate=0.3)))
        cases.append((f"base_{kind}_lm_embedding", kind, dict(model="lm", V=11, e=5, lm_input="embedding")))
    cases.append(("base_lstm_cls_attention", "lstm", dict(model="classifier", C=3, pooling="attention",
                                                          dropout_rate=0.3)))
    return cases


def baseline_param_shapes(kind, task):
    """libenn's tensor names and shapes (Keras layout [in, gates*u]; GRU bias [2, 3u])."""
    G = BASELINE_GATES[kind]
    d = task["e"] if task["model"] == "lm" else SHAPES["d"]
    shapes = {}
    if task["model"] == "lm":
        shapes["embedding.table"] = (task["V"], d)
    din = d
    for i, u in enumerate(BASELINE_UNITS):
        shapes[f"layer{i}.kernel"] = (din, G * u)
        shapes[f"layer{i}.recurrent_kernel"] = (u, G * u)
        shapes[f"layer{i}.bias"] = (2, G * u) if kind == "gru" else (G * u,)
        din = u
    if task["model"] == "classifier" and task["pooling"] == "attention":
        shapes.update({"pool.w": (din,), "pool.b": (1,)})
    shapes.update({"out.W": (din, task["C"] if task["model"] == "classifier" else task["V"]),
                   "out.b": (task["C"] if task["model"] == "classifier" else task["V"],)})
    return shapes


def baseline_draw(kind, task, seed):
    rng = np.random.default_rng(seed)
    B, T = SHAPES["B"], SHAPES["T"]
    params = {}
    for name, shape in baseline_param_shapes(kind, task).items():
        if name.endswith("kernel"):
            v = rng.uniform(-0.7, 0.7, shape)
        elif name.endswith(".bias"):
            v = rng.uniform(-0.3, 0.3, shape)
        elif name == "out.b":
            v = rng.uniform(-0.2, 0.2, shape)
        else:   # pool.w, pool.b, out.W, embedding.table
            v = rng.normal(0.0, 0.5, shape)
        params[name] = v
    inputs = {}
    if task["model"] == "lm":
        V = task["V"]
        tokens = rng.integers(1, V, (B, T))
        tokens[1, T - 2:] = 0
        targets = np.zeros_like(tokens)
        targets[:, :-1] = tokens[:, 1:]
        targets[2, 1] = 0
        inputs["tokens"] = tokens.astype(np.int32)
        inputs["targets"] = targets.astype(np.int32)
    else:
        inputs["x"] = rng.normal(0.0, 1.0, (B, T, SHAPES["d"]))
        inputs["keep_mask"] = (rng.uniform(size=(B, BASELINE_UNITS[-1])) >= task["dropout_rate"]).astype(np.float64)
        inputs["labels"] = rng.integers(0, task["C"], B).astype(np.int32)
    return params, inputs


def torch_layer_weights(kind, i, p):
    """torch's weight_ih/hh [gates*u, in] and biases, as differentiable functions of libenn's
    Keras-layout tensors: gate blocks reordered, matrices transposed. Keras SimpleRNN and LSTM
    have one bias (torch's recurrent one is zero); GRU reset_after has both."""
    u = p[f"layer{i}.recurrent_kernel"].shape[0]

    def reorder(m):   # blocks along the last axis
        return torch.cat([m[..., g * u:(g + 1) * u] for g in TORCH_GATE_ORDER[kind]], dim=-1)

    b = p[f"layer{i}.bias"]
    w = {"weight_ih_l0": reorder(p[f"layer{i}.kernel"]).t(), "weight_hh_l0": reorder(p[f"layer{i}.recurrent_kernel"]).t()}
    if kind == "gru":
        w["bias_ih_l0"], w["bias_hh_l0"] = reorder(b[0]), reorder(b[1])
    else:
        w["bias_ih_l0"], w["bias_hh_l0"] = reorder(b), torch.zeros_like(b)
    return w


def baseline_forward(kind, task, p, inp):
    """Loss, logits and the top layer's hs [T,B,f] through torch.nn's own recurrent layers."""
    y = p["embedding.table"][inp["tokens"]] if task["model"] == "lm" else inp["x"]
    for i, u in enumerate(BASELINE_UNITS):
        w = torch_layer_weights(kind, i, p)
        flat = [w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"]]
        h0 = torch.zeros(1, y.shape[0], u, dtype=y.dtype)
        # what torch.nn.RNN/GRU/LSTM.forward run (one layer, batch first), on weights that are
        # functions of libenn's tensors
        if kind == "lstm":
            y = torch._VF.lstm(y, (h0, h0), flat, True, 1, 0.0, False, False, True)[0]
        else:
            op = torch._VF.gru if kind == "gru" else torch._VF.rnn_tanh
            y = op(y, h0, flat, True, 1, 0.0, False, False, True)[0]
    hs = y.transpose(0, 1)
    out = {"hs": hs}
    if task["model"] == "classifier":
        out["loss"], out["logits"], w = et.classifier_head(p, hs, inp.get("keep_mask"), inp["labels"],
                                                           task["pooling"], task["dropout_rate"])
        if w is not None:
            out["pool_p"] = w
    else:
        out["loss"], out["logits"] = et.lm_head(p, hs, inp["targets"])
    return out


def baseline_compute(kind, task, params, inputs):
    p, inp = to_torch(params, inputs)
    out = baseline_forward(kind, task, p, inp)
    leaves = [(f"grad.{k}", v) for k, v in p.items()]
    if "x" in inp:
        leaves.append(("grad.input.x", inp["x"]))
    grads = torch.autograd.grad(out["loss"], [v for _, v in leaves])
    res = {f"out.{k}": (v.detach().numpy().reshape(1) if k == "loss" else v.detach().numpy()) for k, v in out.items()}
    res.update({name: g.numpy() for (name, _), g in zip(leaves, grads)})
    return res


def baseline_gradcheck(kind, task, params, inputs):
    p, inp = to_torch(params, inputs)
    names = list(p) + (["x"] if "x" in inp else [])
    tensors = [p[k] if k in p else inp[k] for k in names]

    def f(*vals):
        p2, i2 = dict(p), dict(inp)
        for k, v in zip(names, vals):
            (p2 if k in p else i2)[k] = v
        return baseline_forward(kind, task, p2, i2)["loss"]

    return torch.autograd.gradcheck(f, tensors, eps=1e-6, atol=1e-8, rtol=1e-6)


def baseline_metadata(name, kind, task, seed):
    d = task["e"] if task["model"] == "lm" else SHAPES["d"]
    config = {"case": name, "task": task, "baseline": {"kind": kind, "units": list(BASELINE_UNITS)},
              "cell": {"d": d}, "B": SHAPES["B"], "T": SHAPES["T"], "seed": seed,
              "layout": {"x": "[B,T,d]", "tokens": "[B,T]", "hs": "[T,B,f] (top layer)",
                         "kernel": "[in, gates*u], Keras gate order (LSTM i,f,c,o; GRU z,r,h)",
                         "bias": "[gates*u]; GRU [2, 3u] (input, recurrent)", "logits": "classifier [B,C]; lm [B,T,V]",
                         "loss": "[1]"}}
    return {"config": json.dumps(config, sort_keys=True), "generator": "bench/make_fixtures.py",
            "torch": torch.__version__}


def write_baselines(args):
    total = 0
    for name, kind, task in baseline_case_list():
        if args.only and name not in args.only:
            continue
        seed = zlib.crc32(name.encode())
        params, inputs = baseline_draw(kind, task, seed)
        results = baseline_compute(kind, task, params, inputs)
        path = os.path.join(args.out, f"{name}.safetensors")
        safetensors_io.write(path, fixture_tensors(params, inputs, results), baseline_metadata(name, kind, task, seed))
        size = os.path.getsize(path)
        total += size
        gc = ""
        if not args.no_gradcheck:
            gc = " gradcheck " + ("ok" if baseline_gradcheck(kind, task, params, inputs) else "FAILED")
        print(f"{name:36s} seed {seed} loss {float(results['out.loss'][0]):.12f} {size} bytes{gc}")
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "enn_torch"))
    ap.add_argument("--no-gradcheck", action="store_true")
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    self_test()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for name, task, cfg_kwargs, draw_opts in case_list():
        if args.only and name not in args.only:
            continue
        cfg = make_cfg(task, cfg_kwargs)
        seed, params, inputs, rec = choose_seed(name, task, cfg, draw_opts)
        results = compute(task, cfg, params, inputs)
        path = os.path.join(args.out, f"{name}.safetensors")
        safetensors_io.write(path, fixture_tensors(params, inputs, results),
                             metadata(name, task, cfg, seed, draw_opts, rec))
        size = os.path.getsize(path)
        total += size
        gc = ""
        if not args.no_gradcheck and name in GRADCHECK_CASES:
            gc = " gradcheck " + ("ok" if gradcheck_case(task, cfg, params, inputs) else "FAILED")
        print(f"{name:36s} seed {seed} loss {float(results['out.loss'][0]):.12f} clipped {rec.clipped:3d} "
              f"margins relu {rec.relu_min:.1e} clip {rec.clip_min:.1e} l2 {rec.l2_min:.1e} "
              f"{size} bytes{gc}")
    total += write_baselines(args)
    print(f"total {total} bytes")


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    main()
