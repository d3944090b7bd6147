#!/usr/bin/python3
"""npz_forward.py — an independent NumPy forward pass of a cphil policy from its .npz export
(cphil export --format npz). Used by tests to check the ONNX graphs and `cphil predict`
against a third implementation (PyTorch semantics written out in NumPy, float64).

    /usr/bin/python3 tests/py/npz_forward.py weights.npz inputs.npy out.npz
inputs [B, W, E] float; writes the six heads' logits of the last frame (ONNX output names).
"""
import json
import sys

import numpy as np

HEADS = ["buttons", "main_x", "main_y", "c_x", "c_y", "shoulder"]
EPS = 1e-5


def linear(p, name, x, bias=True):
    y = x @ p[name + ".weight"].T
    return y + p[name + ".bias"] if bias else y


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20))))


def rmsnorm(x, g):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * g


def layernorm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def erf(x):
    # float64 erf without scipy: math.erf elementwise
    import math
    return np.vectorize(math.erf)(x)


def forward(p, cfg, X):
    bb = cfg["backbone"]
    L = cfg.get("num_layers", 1)
    if bb == "mlp":
        h = np.maximum(linear(p, "input_proj", X[:, -1]), 0)
        for i in range(len(cfg["mlp_hidden"]) - 1):
            h = np.maximum(linear(p, "mlp.%d" % i, h), 0)
        feat = h
    else:
        h = linear(p, "input_proj", X)  # [B, W, H]
        B, W, H = h.shape
        if bb in ("lstm", "gru"):
            for k in range(L):
                Wih, Whh = p["%s.weight_ih_l%d" % (bb, k)], p["%s.weight_hh_l%d" % (bb, k)]
                bih, bhh = p["%s.bias_ih_l%d" % (bb, k)], p["%s.bias_hh_l%d" % (bb, k)]
                ht = np.zeros((B, H)); ct = np.zeros((B, H)); ys = []
                for t in range(W):
                    gi = h[:, t] @ Wih.T + bih
                    gh = ht @ Whh.T + bhh
                    if bb == "lstm":
                        g = gi + gh
                        i, f, gg, o = np.split(g, 4, axis=1)
                        ct = sigmoid(f) * ct + sigmoid(i) * np.tanh(gg)
                        ht = sigmoid(o) * np.tanh(ct)
                    else:
                        ir, iz, inn = np.split(gi, 3, axis=1)
                        hr, hz, hn = np.split(gh, 3, axis=1)
                        r, z = sigmoid(ir + hr), sigmoid(iz + hz)
                        n = np.tanh(inn + r * hn)
                        ht = (1 - z) * n + z * ht
                    ys.append(ht)
                h = np.stack(ys, axis=1)
            feat = h[:, -1]
        elif bb == "mamba":
            for k in range(L):
                pre = "layers.%d.mixer." % k
                xn = rmsnorm(h, p["layers.%d.norm.weight" % k])
                xz = xn @ p[pre + "in_proj.weight"].T
                I = xz.shape[-1] // 2
                xs, z = xz[..., :I], xz[..., I:]
                cw, cb = p[pre + "conv1d.weight"][:, 0, :], p[pre + "conv1d.bias"]
                K = cw.shape[1]
                xp = np.concatenate([np.zeros((B, K - 1, I)), xs], axis=1)
                xc = np.stack([(xp[:, t:t + K] * cw.T[None]).sum(1) for t in range(W)], axis=1) + cb
                xa = xc * sigmoid(xc)
                xdbl = xa @ p[pre + "x_proj.weight"].T
                N = p[pre + "A_log"].shape[1]
                R = xdbl.shape[-1] - 2 * N
                dtr, Bm, Cm = xdbl[..., :R], xdbl[..., R:R + N], xdbl[..., R + N:]
                dt = softplus(dtr @ p[pre + "dt_proj.weight"].T + p[pre + "dt_proj.bias"])
                A = -np.exp(p[pre + "A_log"])
                st = np.zeros((B, I, N)); ys = []
                for t in range(W):
                    st = np.exp(dt[:, t, :, None] * A) * st + (dt[:, t] * xa[:, t])[:, :, None] * Bm[:, t, None, :]
                    ys.append((st * Cm[:, t, None, :]).sum(-1))
                y = np.stack(ys, axis=1) + xa * p[pre + "D"]
                h = h + (y * (z * sigmoid(z))) @ p[pre + "out_proj.weight"].T
            feat = rmsnorm(h, p["norm_f.weight"])[:, -1]
        elif bb == "attention":
            nh = cfg["num_heads"]; hd = H // nh; h2 = hd // 2
            inv = 10000.0 ** (-(2 * np.arange(h2)) / hd)
            ang = np.arange(W)[:, None] * inv[None]
            cos, sin = np.cos(ang), np.sin(ang)
            def rope(v):  # [B, nh, W, hd]
                a, b = v[..., :h2], v[..., h2:]
                return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)
            mask = np.triu(np.full((W, W), -np.inf), 1)
            for k in range(L):
                a = layernorm(h, p["layers.%d.ln1.weight" % k], p["layers.%d.ln1.bias" % k])
                qkv = linear(p, "layers.%d.attn.qkv" % k, a)
                q, kk, v = [qkv[..., i * H:(i + 1) * H].reshape(B, W, nh, hd).transpose(0, 2, 1, 3) for i in range(3)]
                q, kk = rope(q), rope(kk)
                s = q @ kk.transpose(0, 1, 3, 2) / np.sqrt(hd) + mask
                s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
                att = (s @ v).transpose(0, 2, 1, 3).reshape(B, W, H)
                h = h + linear(p, "layers.%d.attn.out" % k, att)
                b2 = layernorm(h, p["layers.%d.ln2.weight" % k], p["layers.%d.ln2.bias" % k])
                f = linear(p, "layers.%d.ffn.fc1" % k, b2)
                f = 0.5 * f * (1 + erf(f / np.sqrt(2)))
                h = h + linear(p, "layers.%d.ffn.fc2" % k, f)
            feat = layernorm(h, p["norm_f.weight"], p["norm_f.bias"])[:, -1]
        else:
            raise SystemExit("unknown backbone " + bb)
    out = {}
    for name in HEADS:
        out[name] = linear(p, "heads.%s.2" % name, np.maximum(linear(p, "heads.%s.0" % name, feat), 0))
    return out


def main():
    z = np.load(sys.argv[1])
    cfg = json.loads(str(z["config"]))
    p = {k: z[k].astype(np.float64) for k in z.files if k != "config"}
    X = np.load(sys.argv[2]).astype(np.float64)
    out = forward(p, cfg, X)
    np.savez(sys.argv[3], **{k: v.astype(np.float32) for k, v in out.items()})


if __name__ == "__main__":
    main()
