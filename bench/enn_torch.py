"""An independent PyTorch transcription of the Engram Neural Network (/work/shared/ENN-SPEC.md,
kept in the repository as the model the library trains), written with plain autograd so that it
can run in float64 and produce gradient fixtures (bench/make_fixtures.py), and in float32 as the
benchmark peer (bench/torch_bench.py), together with torch.nn RNN/GRU/LSTM baselines built the
way Keras builds them.

Conventions shared with the C library and the fixtures:
  - matrices are laid out [in, out] like Keras kernels: y = x W + b;
  - parameter names: W_z [d,h], b_z [h], M [N,h], W_u [3h,3h], b_u [3h], W_o [3h,h], b_o [h],
    ln1.gain, ln1.bias, ln2.gain, ln2.bias [h]; heads: pool.w [h], pool.b [1], out.W, out.b,
    embedding.table [V,e];
  - inputs are batch-major as in Keras (x [B,T,d], tokens [B,T]); per-step state is time-major
    (hs [T,B,h], a [T,B,N], xi [T,N,h] or [T,B,N,h]).
Nothing here draws random numbers inside the model: h0, H0, the trace noise xi and the dropout
keep-mask are explicit inputs, so every output is a pure function of its arguments.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

TRACE_CLIP = 0.1
L2_EPS = 1e-12


@dataclass
class ENNConfig:
    d: int
    h: int = 128
    N: int = 64
    eta: float = 0.05          # Hebbian learning rate
    alpha: float = 0.5         # trace scale (scale_factor)
    tau: float = 1.5           # temperature
    lam: float = 0.1           # sparsity strength lambda
    layer_norm: bool = True
    ln_eps: float = 1e-6
    trace_mode: str = "shared"        # shared | per_sample
    trace_gradient: str = "exact"     # exact | stop

    def to_dict(self):
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# Elementary functions with the reference's gradient conventions spelt out (not left to
# whatever the installed torch version does at ties and bounds).

def clip_by_value(v, lo, hi):
    """TensorFlow clip_by_value: value clamped; gradient passes where lo <= v <= hi (bounds
    included) and is zero outside."""
    inside = (v >= lo) & (v <= hi)
    return torch.where(inside, v, v.detach().clamp(lo, hi))


def l2_normalize(x):
    """x / sqrt(max(sum(x^2, row), 1e-12)), as tf.math.l2_normalize. TF's Maximum sends the
    gradient to the sum where sum >= eps; below eps the denominator is a constant."""
    s = (x * x).sum(dim=-1, keepdim=True)
    s = torch.where(s >= L2_EPS, s, s.detach().clamp(min=L2_EPS))
    return x / torch.sqrt(s)


def relu(x):
    """ReLU; the gradient at exactly 0 is 0 (as in TensorFlow and torch)."""
    return torch.relu(x)


def layer_norm(x, gain, bias, eps):
    """Keras LayerNormalization over the last axis: biased variance, eps inside the sqrt."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gain + bias


# ----------------------------------------------------------------------------------------------
# The cell

def enn_encode(p, x, cfg):
    """z for all steps at once (z does not depend on h): x [B,T,d] -> z [T,B,h]."""
    z = relu(x.transpose(0, 1) @ p["W_z"] + p["b_z"])
    if cfg.layer_norm:
        z = layer_norm(z, p["ln1.gain"], p["ln1.bias"], cfg.ln_eps)
    return z


def enn_step(p, z, h_prev, H, xi, cfg, trace_const=None):
    """One time step after the encoder.
    z [B,h], h_prev [B,h], H [N,h] (shared) or [B,N,h] (per_sample), xi like H.
    Returns h_new [B,h], H_new, a [B,N].
    trace_const: when given, it replaces H as a constant input (used to check stop mode)."""
    stop = cfg.trace_gradient == "stop"
    H_read = trace_const if trace_const is not None else (H.detach() if stop else H)
    E = p["M"] + cfg.alpha * H_read                      # [N,h] or [B,N,h]
    zn = l2_normalize(z)                                 # [B,h]
    En = l2_normalize(E)
    tau_e = cfg.tau / (1.0 + 10.0 * cfg.lam)
    if cfg.trace_mode == "shared":
        a = torch.softmax((zn @ En.transpose(0, 1)) / tau_e, dim=-1)                # [B,N]
        m = a @ E                                                                   # [B,h]
    else:
        a = torch.softmax(torch.einsum("bh,bnh->bn", zn, En) / tau_e, dim=-1)       # [B,N]
        m = torch.einsum("bn,bnh->bh", a, E)
    h_dim = z.shape[-1]
    W_u = p["W_u"]
    # [z, m, h_prev] W_u written as three row blocks of W_u (same sum, no concatenation)
    u = relu(z @ W_u[:h_dim] + m @ W_u[h_dim:2 * h_dim] + h_prev @ W_u[2 * h_dim:] + p["b_u"])
    h_new = relu(u @ p["W_o"] + p["b_o"])
    if cfg.layer_norm:
        h_new = layer_norm(h_new, p["ln2.gain"], p["ln2.bias"], cfg.ln_eps)

    def trace_update(H_old, a_, z_):
        if cfg.trace_mode == "shared":
            dH = a_.transpose(0, 1) @ z_ / z_.shape[0]             # mean_b outer(a_b, z_b) [N,h]
        else:
            dH = a_.unsqueeze(2) * z_.unsqueeze(1)                # outer(a_b, z_b) [B,N,h]
        return clip_by_value((1.0 - cfg.eta) * H_old + cfg.eta * (dH + xi), -TRACE_CLIP, TRACE_CLIP)

    if stop:
        with torch.no_grad():   # the trace is a constant input to every step: no gradient carried
            H_new = trace_update(H.detach(), a.detach(), z.detach())
    else:
        H_new = trace_update(H, a, z)
    return h_new, H_new, a


def enn_sequence(p, x, h0, H0, xi, cfg, trace_consts=None):
    """x [B,T,d], h0 [B,h], H0 [N,h] or [B,N,h], xi [T,...like H0].
    Returns hs [T,B,h], H_T, a [T,B,N]."""
    z_all = enn_encode(p, x, cfg)
    h, H = h0, H0
    hs, attn = [], []
    for t in range(z_all.shape[0]):
        tc = trace_consts[t] if trace_consts is not None else None
        h, H, a = enn_step(p, z_all[t], h, H, xi[t], cfg, trace_const=tc)
        hs.append(h)
        attn.append(a)
    return torch.stack(hs), H, torch.stack(attn)


def trace_sequence(p, x, h0, H0, xi, cfg):
    """The traces H_0 .. H_{T-1} that each step reads (values only)."""
    with torch.no_grad():
        z_all = enn_encode(p, x, cfg)
        h, H = h0, H0
        out = []
        for t in range(z_all.shape[0]):
            out.append(H.clone())
            h, H, _ = enn_step(p, z_all[t], h, H, xi[t], cfg)
    return out


# ----------------------------------------------------------------------------------------------
# Heads and losses

def pool(p, hs, pooling):
    """hs [T,B,h] -> context [B,h] (attention over time or last state), and weights p [T,B]."""
    if pooling == "last":
        return hs[-1], None
    s = torch.tanh(hs @ p["pool.w"] + p["pool.b"])        # [T,B]
    w = torch.softmax(s, dim=0)
    return (w.unsqueeze(-1) * hs).sum(dim=0), w


def classifier_head(p, hs, keep_mask, labels, pooling, dropout_rate):
    """Pooled feature, dropout with an explicit keep-mask (inverted scaling), Dense(C),
    mean softmax cross-entropy. Returns loss, logits [B,C], pooling weights [T,B] or None."""
    ctx, w = pool(p, hs, pooling)
    if keep_mask is not None:
        ctx = ctx * keep_mask / (1.0 - dropout_rate)
    logits = ctx @ p["out.W"] + p["out.b"]
    return F.cross_entropy(logits, labels), logits, w


def regressor_head(p, hs, targets, output):
    """Dense(k) on the last state ([B,k]) or on every step ([B,T,k]); mean squared error."""
    feat = hs[-1] if output == "last" else hs.transpose(0, 1)
    y = feat @ p["out.W"] + p["out.b"]
    return ((y - targets) ** 2).mean(), y


def lm_head(p, hs, targets):
    """Per-token Dense(V) -> logits [B,T,V]; cross-entropy ignoring target 0, mean over the
    non-ignored tokens."""
    logits = hs.transpose(0, 1) @ p["out.W"] + p["out.b"]
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0)
    return loss, logits


def lm_inputs(p, tokens, lm_input):
    """embedding: x = table[tokens] [B,T,e]; float (paper mode): x = token id as one float [B,T,1]."""
    if lm_input == "embedding":
        return p["embedding.table"][tokens]
    return tokens.to(p["W_z"].dtype).unsqueeze(-1)


def model_x(task, p, inputs):
    """The cell's input [B,T,d]: inputs['x'] when given (also the float feature of the paper-mode
    language model, so that it can get a gradient), else derived from the tokens."""
    if "x" in inputs:
        return inputs["x"]
    return lm_inputs(p, inputs["tokens"], task["lm_input"])


# ----------------------------------------------------------------------------------------------
# Whole models as pure functions of (params, inputs): what the fixtures record

def model_forward(task, p, inputs, cfg, trace_consts=None):
    """task: dict with 'model' in {classifier, regressor, lm} and head options.
    inputs: x (or tokens), h0, H0, xi, and keep_mask/labels or targets.
    Returns dict loss, logits, hs, H_T, a (and pool_p for attention pooling)."""
    x = model_x(task, p, inputs)
    hs, H_T, a = enn_sequence(p, x, inputs["h0"], inputs["H0"], inputs["xi"], cfg, trace_consts)
    out = {"hs": hs, "H_T": H_T, "a": a}
    if task["model"] == "classifier":
        out["loss"], out["logits"], w = classifier_head(p, hs, inputs.get("keep_mask"), inputs["labels"],
                                                        task["pooling"], task["dropout_rate"])
        if w is not None:
            out["pool_p"] = w
    elif task["model"] == "regressor":
        out["loss"], out["logits"] = regressor_head(p, hs, inputs["targets"], task["regressor_output"])
    else:
        out["loss"], out["logits"] = lm_head(p, hs, inputs["targets"])
    return out


def param_shapes(task, cfg):
    """Parameter names and shapes of a model, in a fixed order."""
    d, h, N = cfg.d, cfg.h, cfg.N
    shapes = {}
    if task["model"] == "lm" and task["lm_input"] == "embedding":
        shapes["embedding.table"] = (task["V"], d)
    shapes.update({"W_z": (d, h), "b_z": (h,), "M": (N, h), "W_u": (3 * h, 3 * h), "b_u": (3 * h,),
                   "W_o": (3 * h, h), "b_o": (h,)})
    if cfg.layer_norm:
        shapes.update({"ln1.gain": (h,), "ln1.bias": (h,), "ln2.gain": (h,), "ln2.bias": (h,)})
    if task["model"] == "classifier":
        if task["pooling"] == "attention":
            shapes.update({"pool.w": (h,), "pool.b": (1,)})
        shapes.update({"out.W": (h, task["C"]), "out.b": (task["C"],)})
    elif task["model"] == "regressor":
        shapes.update({"out.W": (h, task["k"]), "out.b": (task["k"],)})
    else:
        shapes.update({"out.W": (h, task["V"]), "out.b": (task["V"],)})
    return shapes


# ----------------------------------------------------------------------------------------------
# Keras-style initialisation and nn.Module wrappers (benchmark peer)

def he_normal_(t, fan_in):
    """Keras he_normal: truncated normal (at two std) with std sqrt(2/fan_in); Keras divides
    the std by 0.8796 so that the truncated distribution has the intended std."""
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    with torch.no_grad():
        nn.init.trunc_normal_(t, 0.0, std, -2 * std, 2 * std)
    return t


def glorot_uniform_(t, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        t.uniform_(-limit, limit)
    return t


def keras_init(task, cfg, dtype=torch.float32):
    p = {}
    for name, shape in param_shapes(task, cfg).items():
        t = torch.zeros(shape, dtype=dtype)
        if name in ("W_z", "W_u", "W_o"):
            he_normal_(t, shape[0])
        elif name == "M":
            glorot_uniform_(t, shape[0], shape[1])
        elif name in ("out.W", "pool.w"):
            w2 = t if t.dim() == 2 else t.view(-1, 1)
            glorot_uniform_(w2, w2.shape[0], w2.shape[1])
        elif name == "embedding.table":
            with torch.no_grad():
                t.uniform_(-0.05, 0.05)   # Keras Embedding default
        elif name.endswith(".gain"):
            t.fill_(1.0)
        p[name] = t
    return p


class ENNModel(nn.Module):
    """The ENN model (classifier, regressor or language model) as an nn.Module for training.
    Draws h0, H0 ~ N(0, 0.01^2) per batch and the trace noise N(0, sigma^2), as the package does."""

    def __init__(self, task, cfg, sigma=0.001, dtype=torch.float32):
        super().__init__()
        self.task, self.cfg, self.sigma = task, cfg, sigma
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v)
                                        for k, v in keras_init(task, cfg, dtype).items()})

    def named(self):
        return {k.replace("__", "."): v for k, v in self.params.items()}

    def forward(self, inputs):
        cfg = self.cfg
        ref = inputs["tokens"] if self.task["model"] == "lm" else inputs["x"]
        B, T = ref.shape[0], ref.shape[1]
        like = dict(dtype=self.params["W_z"].dtype, device=self.params["W_z"].device)
        trace_shape = (cfg.N, cfg.h) if cfg.trace_mode == "shared" else (B, cfg.N, cfg.h)
        full = dict(inputs)
        full["h0"] = 0.01 * torch.randn(B, cfg.h, **like)
        full["H0"] = 0.01 * torch.randn(trace_shape, **like)
        full["xi"] = self.sigma * torch.randn((T,) + trace_shape, **like)
        if self.task["model"] == "classifier":
            rate = self.task["dropout_rate"]
            full["keep_mask"] = (torch.rand(B, cfg.h, **like) >= rate).to(like["dtype"]) if self.training else None
        return model_forward(self.task, self.named(), full, cfg)["loss"]


def _keras_recurrent_init(rnn, gates, forget_bias):
    """Keras: input kernels Glorot uniform, recurrent kernels orthogonal (per gate block, as
    Keras draws one orthogonal [h, gates*h] matrix), biases zero; LSTM forget-gate bias 1.
    torch keeps separate input and recurrent biases; Keras RNN/LSTM have one, so the recurrent
    one is zeroed and frozen there (GRU reset_after has two in Keras too)."""
    for name, w in rnn.named_parameters():
        with torch.no_grad():
            if name.startswith("weight_ih"):
                glorot_uniform_(w, w.shape[1], w.shape[0])
            elif name.startswith("weight_hh"):
                nn.init.orthogonal_(w.t())   # Keras: orthogonal [h, gates*h]
            else:
                w.zero_()
                if forget_bias and name.startswith("bias_ih"):
                    hsz = w.shape[0] // 4
                    w[hsz:2 * hsz] = 1.0      # gate order i, f, g, o (the same in Keras)
        if name.startswith("bias_hh") and gates in (1, 4):
            w.requires_grad_(False)


class BaselineModel(nn.Module):
    """Two stacked torch.nn recurrent layers (Keras semantics: SimpleRNN tanh; GRU reset_after,
    which is torch's GRU form; LSTM with forget bias 1), then the head: classifier (last state,
    Dropout, Dense) or per-token Dense(V) for the language model (with an embedding table)."""

    def __init__(self, kind, task, d, sizes, dtype=torch.float32):
        super().__init__()
        cls, gates = {"RNN": (nn.RNN, 1), "GRU": (nn.GRU, 3), "LSTM": (nn.LSTM, 4)}[kind]
        self.task = task
        if task["model"] == "lm":
            self.embedding = nn.Embedding(task["V"], d)
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
        self.layers = nn.ModuleList()
        din = d
        for hsz in sizes:
            layer = cls(din, hsz, batch_first=True)
            _keras_recurrent_init(layer, gates, forget_bias=(kind == "LSTM"))
            self.layers.append(layer)
            din = hsz
        nout = task["V"] if task["model"] == "lm" else task["C"]
        self.out = nn.Linear(din, nout)
        glorot_uniform_(self.out.weight, din, nout)
        nn.init.zeros_(self.out.bias)
        self.to(dtype)

    def forward(self, inputs):
        if self.task["model"] == "lm":
            y = self.embedding(inputs["tokens"])
        else:
            y = inputs["x"]
        for layer in self.layers:
            y, _ = layer(y)
        if self.task["model"] == "lm":
            logits = self.out(y)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs["targets"].reshape(-1),
                                   ignore_index=0)
        feat = F.dropout(y[:, -1], self.task.get("dropout_rate", 0.3), self.training)
        return F.cross_entropy(self.out(feat), inputs["labels"])


def clip_each_grad_norm_(params, max_norm=1.0):
    """Keras clipnorm: every weight's gradient is clipped to norm max_norm separately."""
    for q in params:
        if q.grad is not None:
            n = q.grad.norm()
            if n > max_norm:
                q.grad.mul_(max_norm / n)
