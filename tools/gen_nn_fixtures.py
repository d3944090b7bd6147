#!/usr/bin/python3
"""gen_nn_fixtures.py - writes the PyTorch reference fixtures of tests/test_nn.c.

Run with Debian's python3-torch:  /usr/bin/python3 tools/gen_nn_fixtures.py [outdir]
(default outdir tests/fixtures/nn). Deterministic (fixed seeds); the files are committed.

Every fixture is computed by PyTorch in float64 from float32-representable inputs and weights, so
the stored outputs and gradients are exact to f32 rounding; the C code (f32) is compared with
atol 1e-5, rtol 1e-4. Each layer gets an upstream gradient dy (loss = sum(y * dy)); policies use
the real loss. Sizes are small and odd on purpose (stride bugs show).

File format (little-endian), read by tests/test_nn.c:
  "CPNNFX01", u32 count, then per record: u16 name length, name bytes, u8 dtype (0 f32, 1 i32,
  2 u8), u8 ndim, u32 dims[ndim], data.
Policy parameter names are the C tensor table's (p.<name>, gradient g.<name>).
"""
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'tests', 'fixtures', 'nn')

HEADS = [('buttons', 64, 8), ('main_x', 64, 17), ('main_y', 64, 17), ('c_x', 64, 17), ('c_y', 64, 17),
         ('shoulder', 32, 5)]


def f32r(t):
    """round to float32 values, keep float64 storage"""
    return t.float().double()


def write(name, recs):
    path = os.path.join(OUT, name + '.bin')
    with open(path, 'wb') as f:
        f.write(b'CPNNFX01')
        f.write(struct.pack('<I', len(recs)))
        for key, t in recs:
            t = t.detach() if torch.is_tensor(t) else torch.tensor(t)
            if t.dtype in (torch.float32, torch.float64):
                dt, data = 0, t.float().contiguous().numpy().tobytes()
            elif t.dtype == torch.uint8:
                dt, data = 2, t.contiguous().numpy().tobytes()
            else:
                dt, data = 1, t.to(torch.int32).contiguous().numpy().tobytes()
            kb = key.encode()
            f.write(struct.pack('<H', len(kb)) + kb + struct.pack('<BB', dt, t.dim()))
            f.write(struct.pack('<%dI' % t.dim(), *t.shape))
            f.write(data)
    print('%-28s %7d bytes' % (name, os.path.getsize(path)))


def randn(*s, scale=1.0):
    return f32r(torch.randn(*s) * scale)


def perturb(module, scale=0.1):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(f32r(p + scale * torch.randn_like(p)))


# ---------------------------------------------------------------------------------------------
# modules with the C tensor table's names
class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mixer(nn.Module):
    """Mamba mixer as in mamba_simple.py (no projection biases), sequential selective scan."""

    def __init__(self, H, N, expand, K):
        super().__init__()
        I, R = expand * H, math.ceil(H / 16)
        self.I, self.R, self.N, self.K = I, R, N, K
        self.in_proj = nn.Linear(H, 2 * I, bias=False)
        self.conv1d = nn.Conv1d(I, I, K, groups=I, padding=K - 1, bias=True)
        self.x_proj = nn.Linear(I, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, I, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float64)).repeat(I, 1))
        self.D = nn.Parameter(torch.ones(I))
        self.out_proj = nn.Linear(I, H, bias=False)
        with torch.no_grad():
            dt = torch.exp(torch.rand(I) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    def forward(self, u):
        B, T, _ = u.shape
        xz = self.in_proj(u)
        xs, z = xz[..., :self.I], xz[..., self.I:]
        xc = self.conv1d(xs.transpose(1, 2))[..., :T].transpose(1, 2)
        xa = F.silu(xc)
        xdbl = self.x_proj(xa)
        dtr, Bm, Cm = xdbl[..., :self.R], xdbl[..., self.R:self.R + self.N], xdbl[..., self.R + self.N:]
        dt = F.softplus(self.dt_proj(dtr))
        A = -torch.exp(self.A_log)
        h = torch.zeros(B, self.I, self.N)
        ys = []
        for t in range(T):
            h = torch.exp(dt[:, t, :, None] * A) * h + dt[:, t, :, None] * Bm[:, t, None, :] * xa[:, t, :, None]
            ys.append((h * Cm[:, t, None, :]).sum(-1) + self.D * xa[:, t])
        y = torch.stack(ys, 1)
        return self.out_proj(y * F.silu(z))


class MambaBlock(nn.Module):
    def __init__(self, H, N, expand, K):
        super().__init__()
        self.norm = RMSNorm(H)
        self.mixer = Mixer(H, N, expand, K)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


def rope(x, nh):
    """rotate-half RoPE on [B, T, H] split into nh heads, base 10000, position = index in T"""
    B, T, H = x.shape
    hd = H // nh
    h2 = hd // 2
    inv = torch.tensor([10000.0 ** (-(2 * i) / hd) for i in range(h2)])
    ang = (torch.arange(T, dtype=torch.float64)[:, None] * inv.double()[None, :]).to(x.dtype)
    c, s = torch.cos(ang), torch.sin(ang)
    x = x.view(B, T, nh, hd)
    x1, x2 = x[..., :h2], x[..., h2:]
    c, s = c[None, :, None, :], s[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1).view(B, T, H)


class Attn(nn.Module):
    def __init__(self, H, nh):
        super().__init__()
        self.nh = nh
        self.qkv = nn.Linear(H, 3 * H)
        self.out = nn.Linear(H, H)

    def forward(self, u):
        B, T, H = u.shape
        nh, hd = self.nh, H // self.nh
        qkv = self.qkv(u)
        q, k, v = rope(qkv[..., :H], nh), rope(qkv[..., H:2 * H], nh), qkv[..., 2 * H:]
        q, k, v = [t.view(B, T, nh, hd).transpose(1, 2) for t in (q, k, v)]
        S = q @ k.transpose(-1, -2) / math.sqrt(hd)
        S = S.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float('-inf'))
        a = torch.softmax(S, -1) @ v
        return self.out(a.transpose(1, 2).reshape(B, T, H))


class FFN(nn.Module):
    def __init__(self, H):
        super().__init__()
        self.fc1 = nn.Linear(H, 4 * H)
        self.fc2 = nn.Linear(4 * H, H)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class AttnBlock(nn.Module):
    def __init__(self, H, nh):
        super().__init__()
        self.ln1 = nn.LayerNorm(H)
        self.attn = Attn(H, nh)
        self.ln2 = nn.LayerNorm(H)
        self.ffn = FFN(H)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class Policy(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        bb, H, L = cfg['backbone'], cfg['hidden'], cfg['num_layers']
        H0 = cfg['mlp_hidden'][0] if bb == 'mlp' else H
        self.input_proj = nn.Linear(cfg['E'], H0)
        if bb == 'mlp':
            hs = cfg['mlp_hidden']
            self.mlp = nn.ModuleList([nn.Linear(hs[i], hs[i + 1]) for i in range(len(hs) - 1)])
            Hb = hs[-1]
        elif bb == 'lstm':
            self.lstm = nn.LSTM(H, H, L, batch_first=True)
            Hb = H
        elif bb == 'gru':
            self.gru = nn.GRU(H, H, L, batch_first=True)
            Hb = H
        elif bb == 'mamba':
            self.layers = nn.ModuleList([MambaBlock(H, cfg['state_size'], cfg['expand'], cfg['conv_size'])
                                         for _ in range(L)])
            self.norm_f = RMSNorm(H)
            Hb = H
        elif bb == 'attention':
            self.layers = nn.ModuleList([AttnBlock(H, cfg['num_heads']) for _ in range(L)])
            self.norm_f = nn.LayerNorm(H)
            Hb = H
        self.heads = nn.ModuleDict({n: nn.Sequential(nn.Linear(Hb, hh), nn.ReLU(), nn.Linear(hh, C))
                                    for n, hh, C in HEADS})

    def forward(self, dense):
        bb = self.cfg['backbone']
        x = self.input_proj(dense)
        if bb == 'mlp':
            x = F.relu(x)
            for l in self.mlp:
                x = F.relu(l(x))
        elif bb == 'lstm':
            x, _ = self.lstm(x)
        elif bb == 'gru':
            x, _ = self.gru(x)
        else:
            for l in self.layers:
                x = l(x)
            x = self.norm_f(x)
        return torch.cat([self.heads[n](x) for n, _, _ in HEADS], -1)


def policy_loss(logits, buttons, cls, weight, pw, bw, eps):
    btn = F.binary_cross_entropy_with_logits(logits[..., :8], buttons.double(), pos_weight=pw,
                                             reduction='none').mean(-1)
    frame = bw * btn
    off = 8
    for h, (_, _, C) in enumerate(HEADS[1:]):
        lg = logits[..., off:off + C].reshape(-1, C)
        frame = frame + F.cross_entropy(lg, cls[..., h].reshape(-1).long(), label_smoothing=eps,
                                        reduction='none').view(frame.shape)
        off += C
    return (frame * weight).sum() / weight.sum()


# ---------------------------------------------------------------------------------------------
# a small made-up embedding layout: 7 continuous features, id blocks of widths 4, 5, 3
N_CONT, BLOCKS = 7, [4, 5, 3]
E = N_CONT + sum(BLOCKS)


def make_inputs(B, T, g):
    cont = f32r(torch.randn(B, T, N_CONT, generator=g))
    ids = []
    off = N_CONT
    for w in BLOCKS:
        ids.append(torch.randint(0, w, (B, T), generator=g) + off)
        off += w
    ids = torch.stack(ids, -1)
    dense = torch.zeros(B, T, E)
    dense[..., :N_CONT] = cont
    dense.scatter_(-1, ids, 1.0)
    return cont, ids, dense


def make_targets(B, T, g):
    buttons = (torch.rand(B, T, 8, generator=g) < 0.3).to(torch.uint8)
    cls = torch.stack([torch.randint(0, 17, (B, T), generator=g) for _ in range(4)] +
                      [torch.randint(0, 5, (B, T), generator=g)], -1).to(torch.uint8)
    weight = f32r(torch.rand(B, T, generator=g) + 0.25)
    weight[0, 1] = 0.0  # a zero-weight frame
    return buttons, cls, weight


def grads_of(module, prefix='g.'):
    return [(prefix + n, p.grad.detach().clone()) for n, p in module.named_parameters()]


def params_of(module, prefix='p.'):
    return [(prefix + n, p.detach().clone()) for n, p in module.named_parameters()]


def gen_layers():
    torch.manual_seed(1)
    # Linear
    M, K, N = 5, 7, 3
    lin = nn.Linear(K, N)
    perturb(lin)
    x = randn(M, K).requires_grad_()
    dy = randn(M, N)
    y = lin(x)
    (y * dy).sum().backward()
    write('linear', [('x', x), ('dy', dy), ('y', y), ('dx', x.grad)] + params_of(lin) + grads_of(lin))
    # input layer = Linear on [cont | one-hot]
    g = torch.Generator().manual_seed(2)
    cont, ids, dense = make_inputs(5, 1, g)
    inp = nn.Linear(E, 6)
    perturb(inp)
    dy = randn(5, 6)
    y = inp(dense[:, 0])
    (y * dy).sum().backward()
    write('input', [('cont', cont[:, 0]), ('ids', ids[:, 0]), ('dy', dy), ('y', y)] + params_of(inp) +
          grads_of(inp))
    # norms
    for name, mod in (('layernorm', nn.LayerNorm(9)), ('rmsnorm', RMSNorm(9))):
        perturb(mod, 0.3)
        x = randn(4, 9, scale=2.0)
        x[1] += 3.0
        x.requires_grad_()
        dy = randn(4, 9)
        y = mod(x)
        (y * dy).sum().backward()
        write(name, [('x', x), ('dy', dy), ('y', y), ('dx', x.grad)] + params_of(mod) + grads_of(mod))
    # activations, incl. softplus's threshold region
    x = f32r(torch.cat([torch.linspace(-8, 8, 33), torch.tensor([19.5, 20.5, 25.0, -30.0])])).requires_grad_()
    dy = randn(x.shape[0])
    recs = [('x', x), ('dy', dy)]
    for name, fn in (('relu', F.relu), ('gelu', F.gelu), ('silu', F.silu), ('softplus', F.softplus),
                     ('sigmoid', torch.sigmoid), ('tanh', torch.tanh)):
        x.grad = None
        y = fn(x)
        (y * dy).sum().backward()
        recs += [('y_' + name, y), ('dx_' + name, x.grad.clone())]
    write('acts', recs)
    # LSTM / GRU single layer, In != H
    B, T, In, H = 2, 5, 5, 3
    for name, cls_ in (('lstm', nn.LSTM), ('gru', nn.GRU)):
        rnn = cls_(In, H, 1, batch_first=True)
        perturb(rnn, 0.3)
        x = randn(B, T, In).requires_grad_()
        dy = randn(B, T, H)
        y, _ = rnn(x)
        (y * dy).sum().backward()
        write(name, [('x', x), ('dy', dy), ('y', y), ('dx', x.grad)] + params_of(rnn) + grads_of(rnn))
    # Mamba mixer
    B, T, H, Nst, ex, Kc = 2, 5, 5, 3, 2, 3
    mix = Mixer(H, Nst, ex, Kc)
    perturb(mix, 0.2)
    u = randn(B, T, H).requires_grad_()
    dy = randn(B, T, H)
    y = mix(u)
    (y * dy).sum().backward()
    write('mamba', [('u', u), ('dy', dy), ('y', y), ('du', u.grad)] + params_of(mix) + grads_of(mix))
    # attention (no block around it)
    B, T, H, nh = 2, 5, 8, 2
    att = Attn(H, nh)
    perturb(att, 0.2)
    u = randn(B, T, H).requires_grad_()
    dy = randn(B, T, H)
    y = att(u)
    (y * dy).sum().backward()
    write('attention', [('u', u), ('dy', dy), ('y', y), ('du', u.grad)] + params_of(att) + grads_of(att))
    # loss
    g = torch.Generator().manual_seed(3)
    Mf = 7
    logits = randn(Mf, 81, scale=2.0).requires_grad_()
    buttons, cls, weight = make_targets(1, Mf, g)
    pw = f32r(torch.rand(8) * 3 + 0.5)
    loss = policy_loss(logits, buttons[0], cls[0], weight[0], pw, 1.5, 0.1)
    loss.backward()
    write('loss', [('logits', logits), ('buttons', buttons[0]), ('cls', cls[0]), ('weight', weight[0]),
                   ('pos_weight', pw), ('loss', loss.reshape(1)), ('dlogits', logits.grad)])


def small_cfg(backbone):
    return dict(backbone=backbone, n_cont=N_CONT, n_ids=len(BLOCKS), E=E, hidden=6, num_layers=2,
                mlp_hidden=[9, 5], state_size=3, expand=2, conv_size=3, num_heads=3, window=5)


B_POL, T_POL = 2, 5
PW = [1.0, 2.0, 0.5, 1.5, 1.0, 3.0, 1.0, 0.75]


def gen_policies():
    for i, bb in enumerate(['mlp', 'lstm', 'gru', 'mamba', 'attention']):
        torch.manual_seed(10 + i)
        cfg = small_cfg(bb)
        pol = Policy(cfg)
        perturb(pol, 0.1)
        g = torch.Generator().manual_seed(20 + i)
        cont, ids, dense = make_inputs(B_POL, T_POL, g)
        buttons, cls, weight = make_targets(B_POL, T_POL, g)
        pw = f32r(torch.tensor(PW))
        logits = pol(dense)
        loss = policy_loss(logits, buttons, cls, weight, pw, 1.5, 0.1)
        loss.backward()
        recs = [('cont', cont), ('ids', ids), ('buttons', buttons), ('cls', cls), ('weight', weight),
                ('pos_weight', pw), ('logits', logits), ('loss', loss.reshape(1))]
        recs += params_of(pol) + grads_of(pol)
        # ten AdamW steps (warmup 3 + cosine to step 10, clipping at 0.5) for lstm and mamba
        if bb in ('lstm', 'mamba'):
            pol.zero_grad()
            lr0, warm, total = 1e-2, 3, 10
            opt = torch.optim.AdamW(pol.parameters(), lr=lr0, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
            losses, norms = [], []
            for s in range(10):
                lr = lr0 * (s + 1) / warm if s < warm else lr0 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
                for grp in opt.param_groups:
                    grp['lr'] = lr
                opt.zero_grad()
                l = policy_loss(pol(dense), buttons, cls, weight, pw, 1.5, 0.1)
                l.backward()
                norms.append(float(torch.nn.utils.clip_grad_norm_(pol.parameters(), 0.5)))
                opt.step()
                losses.append(float(l))
            recs += [('adam_losses', torch.tensor(losses)), ('adam_norms', torch.tensor(norms))]
        write('policy_' + bb, recs)


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    gen_layers()
    gen_policies()
