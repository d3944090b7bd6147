#!/usr/bin/env python3
"""torch_train_gpu.py - the PyTorch twin of cphil's GPU training step, on the same card.

The same policy as cphil's (docs/model.md): input layer -> backbone -> six heads
(Linear(Hb,64|32) -> ReLU -> Linear(C)), loss on every window position (BCE with logits for the
8 buttons, cross-entropy for the five categorical heads), AdamW(fused=True) after
clip_grad_norm_(1.0), f32 master weights with bf16 autocast ("bf16") or plain f32 ("f32", TF32
off). Backbones as a PyTorch user writes them: nn.LSTM / nn.GRU (cuDNN), pre-norm attention blocks
with F.scaled_dot_product_attention(is_causal=True) and RoPE, Mamba in plain PyTorch (the
reference selective scan as a loop over time; mamba_ssm is not installed on the GPU machine),
and the MLP. Two input layers: "dense" (nn.Linear(E, H0) on a dense E-wide tensor with one-hot
blocks, what the ONNX export and most PyTorch policies take) and "gather" (the same function from
the ids: embedding_bag(sum) of the input weight's columns + a Linear on the continuous block, the
algorithmically fair twin of cphil's gather layer). Data is staged on the GPU before timing (the
kernel-level comparison); modes: eager, torch.compile and graph (the whole step captured with
torch.cuda.graph and replayed) (the compile/capture time is excluded and
printed).

Timing: warm-up steps, then CUDA events around each step; median and p90 of the step time,
frames/s = B x W / median, peak GPU memory. One JSON object per line on stdout.

  python3 bench/torch_train_gpu.py [--backbones lstm,gru,mamba,attention,mlp] [--batches 64,512]
      [--precision bf16] [--modes eager,compile] [--inputs gather,dense] [--steps 30] [--warmup 5]
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N_CONT, N_IDS, E = 99, 10, 2185
HEADS = [('buttons', 64, 8), ('main_x', 64, 17), ('main_y', 64, 17), ('c_x', 64, 17), ('c_y', 64, 17),
         ('shoulder', 32, 5)]


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mixer(nn.Module):
    """mamba_simple.py's mixer with the selective scan as a loop over time (plain PyTorch)."""

    def __init__(self, H, N, expand, K):
        super().__init__()
        I, R = expand * H, math.ceil(H / 16)
        self.I, self.R, self.N = I, R, N
        self.in_proj = nn.Linear(H, 2 * I, bias=False)
        self.conv1d = nn.Conv1d(I, I, K, groups=I, padding=K - 1, bias=True)
        self.x_proj = nn.Linear(I, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, I, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(I, 1))
        self.D = nn.Parameter(torch.ones(I))
        self.out_proj = nn.Linear(I, H, bias=False)

    def forward(self, u):
        B, T, _ = u.shape
        xz = self.in_proj(u)
        xs, z = xz[..., :self.I], xz[..., self.I:]
        xa = F.silu(self.conv1d(xs.transpose(1, 2))[..., :T].transpose(1, 2))
        xdbl = self.x_proj(xa)
        dtr, Bm, Cm = xdbl[..., :self.R], xdbl[..., self.R:self.R + self.N], xdbl[..., self.R + self.N:]
        dt = F.softplus(self.dt_proj(dtr)).float()
        A = -torch.exp(self.A_log.float())
        dA = torch.exp(dt.unsqueeze(-1) * A)                              # [B, T, I, N]
        dBu = dt.unsqueeze(-1) * Bm.float().unsqueeze(2) * xa.float().unsqueeze(-1)
        h = torch.zeros(B, self.I, self.N, device=u.device, dtype=torch.float32)
        ys = []
        for t in range(T):
            h = dA[:, t] * h + dBu[:, t]
            ys.append((h * Cm[:, t].float().unsqueeze(1)).sum(-1))
        y = torch.stack(ys, 1) + self.D * xa.float()
        return self.out_proj((y * F.silu(z.float())).to(u.dtype))


class MambaBlock(nn.Module):
    def __init__(self, H, N, expand, K):
        super().__init__()
        self.norm = RMSNorm(H)
        self.mixer = Mixer(H, N, expand, K)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


def rope_tables(T, hd, device):
    h2 = hd // 2
    inv = 10000.0 ** (-(2 * torch.arange(h2, dtype=torch.float64)) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float().to(device), torch.sin(ang).float().to(device)


def rope(x, c, s):  # x [B, nh, T, hd]
    h2 = x.shape[-1] // 2
    x1, x2 = x[..., :h2], x[..., h2:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


class AttnBlock(nn.Module):
    def __init__(self, H, nh, T, device):
        super().__init__()
        self.nh = nh
        self.ln1, self.ln2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.qkv, self.out = nn.Linear(H, 3 * H), nn.Linear(H, H)
        self.fc1, self.fc2 = nn.Linear(H, 4 * H), nn.Linear(4 * H, H)
        c, s = rope_tables(T, H // nh, device)
        self.register_buffer('c', c, persistent=False)
        self.register_buffer('s', s, persistent=False)

    def forward(self, x):
        B, T, H = x.shape
        nh, hd = self.nh, H // self.nh
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, nh, hd).permute(2, 0, 3, 1, 4)
        q, k = rope(q, self.c.to(q.dtype), self.s.to(q.dtype)), rope(k, self.c.to(k.dtype), self.s.to(k.dtype))
        if hasattr(F, 'scaled_dot_product_attention'):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch < 2.0 (only for a CPU smoke test of this script)
            S = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            S = S.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1), float('-inf'))
            a = torch.softmax(S, -1) @ v
        x = x + self.out(a.transpose(1, 2).reshape(B, T, H))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Policy(nn.Module):
    def __init__(self, bb, H, L, T, gather, device):
        super().__init__()
        self.bb, self.gather = bb, gather
        H0 = 512 if bb == 'mlp' else H
        self.input_proj = nn.Linear(E, H0)
        if bb == 'mlp':
            self.mlp = nn.ModuleList([nn.Linear(512, 512)])
            Hb = 512
        elif bb in ('lstm', 'gru'):
            self.rnn = (nn.LSTM if bb == 'lstm' else nn.GRU)(H, H, L, batch_first=True)
            Hb = H
        elif bb == 'mamba':
            self.layers = nn.ModuleList([MambaBlock(H, 16, 2, 4) for _ in range(L)])
            self.norm_f = RMSNorm(H)
            Hb = H
        else:
            self.layers = nn.ModuleList([AttnBlock(H, 4, T, device) for _ in range(L)])
            self.norm_f = nn.LayerNorm(H)
            Hb = H
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(Hb, hh), nn.ReLU(), nn.Linear(hh, C))
                                    for _, hh, C in HEADS])

    def inputs(self, cont, ids, dense):
        if not self.gather:
            return self.input_proj(dense)
        W = self.input_proj.weight  # [H0, E]
        B, T, _ = cont.shape
        x = F.linear(cont, W[:, :N_CONT], self.input_proj.bias)
        g = F.embedding_bag(ids.view(-1, N_IDS), W.t(), mode='sum')
        return x + g.view(B, T, -1).to(x.dtype)

    def forward(self, cont, ids, dense):
        x = self.inputs(cont, ids, dense)
        if self.bb == 'mlp':
            x = F.relu(x)
            for l in self.mlp:
                x = F.relu(l(x))
        elif self.bb in ('lstm', 'gru'):
            x, _ = self.rnn(x)
        else:
            for l in self.layers:
                x = l(x)
            x = self.norm_f(x)
        return torch.cat([h(x) for h in self.heads], -1)


def policy_loss(logits, buttons, cls):
    logits = logits.float()
    frame = F.binary_cross_entropy_with_logits(logits[..., :8], buttons, reduction='none').mean(-1)
    off = 8
    for h, (_, _, C) in enumerate(HEADS[1:]):
        frame = frame + F.cross_entropy(logits[..., off:off + C].reshape(-1, C), cls[..., h].reshape(-1),
                                        reduction='none').view(frame.shape)
        off += C
    return frame.mean()


def bench(bb, B, T, H, L, prec, mode, gather, steps, warmup):
    dev = torch.device('cuda')
    torch.manual_seed(0)
    pol = Policy(bb, H, L, T, gather, dev).to(dev)
    cont = torch.randn(B, T, N_CONT, device=dev)
    blk = (E - N_CONT) // N_IDS
    ids = (N_CONT + torch.arange(N_IDS, device=dev) * blk + torch.randint(0, blk, (B, T, N_IDS), device=dev))
    dense = None
    if not gather:
        dense = torch.zeros(B, T, E, device=dev)
        dense[..., :N_CONT] = cont
        dense.scatter_(-1, ids, 1.0)
    buttons = (torch.rand(B, T, 8, device=dev) < 0.2).float()
    cls = torch.stack([torch.randint(0, 17, (B, T), device=dev) for _ in range(4)] +
                      [torch.randint(0, 5, (B, T), device=dev)], -1)
    # graph: the whole step (forward, loss, backward, clipping, fused AdamW) captured once with
    # torch.cuda.graph and replayed, the strongest baseline of gpu_training.md section 4
    opt = torch.optim.AdamW(pol.parameters(), lr=1e-4, weight_decay=1e-5, fused=True,
                            capturable=(mode == 'graph'))
    fwd = pol
    compile_s = 0.0
    if mode == 'compile':
        fwd = torch.compile(pol)

    def eager_step():
        opt.zero_grad(set_to_none=True)
        if prec == 'bf16':
            with torch.autocast('cuda', dtype=torch.bfloat16, cache_enabled=(mode != 'graph')):
                logits = fwd(cont, ids, dense)
        else:
            logits = fwd(cont, ids, dense)
        loss = policy_loss(logits, buttons, cls)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), 1.0, foreach=True)
        opt.step()
        return loss

    step = eager_step
    t0 = time.time()
    if mode == 'graph':
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(max(warmup, 3)):
                eager_step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            eager_step()
        step = graph.replay
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    compile_s = time.time() - t0 if mode != 'eager' else 0.0
    torch.cuda.reset_peak_memory_stats()
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
    for a, b in ev:
        a.record()
        step()
        b.record()
    torch.cuda.synchronize()
    ms = sorted(a.elapsed_time(b) for a, b in ev)
    med, p90 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return dict(side='pytorch', backbone=bb, batch=B, precision=prec, mode=mode, input='gather' if gather else 'dense',
                step_ms=med, p90_ms=p90, frames_per_s=B * T / (med / 1e3),
                peak_mib=torch.cuda.max_memory_allocated() / 2**20, warmup_s=compile_s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--backbones', default='lstm,gru,mamba,attention,mlp')
    ap.add_argument('--batches', default='64,512')
    ap.add_argument('--precision', default='bf16')
    ap.add_argument('--modes', default='eager,compile,graph')
    ap.add_argument('--inputs', default='gather,dense')
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--window', type=int, default=60)
    ap.add_argument('--compile-backbones', default='attention,mlp',
                    help='backbones to run under torch.compile (the 60-step Mamba loop did not finish '
                         'compiling within 180 s on an H100, 2026-12-05; nn.LSTM/GRU graph-break)')
    ap.add_argument('--compile-inputs', default='gather',
                    help='input layers to run under torch.compile (compiling takes minutes each)')
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(json.dumps(dict(side='pytorch', torch=torch.__version__, cuda=torch.version.cuda,
                          cudnn=torch.backends.cudnn.version(), gpu=torch.cuda.get_device_name())), flush=True)
    for bb in a.backbones.split(','):
        for B in [int(x) for x in a.batches.split(',')]:
            for inp in a.inputs.split(','):
                for mode in a.modes.split(','):
                    # Dynamo graph-breaks on nn.LSTM/GRU (pytorch #167275): compile only what it can
                    if mode == 'compile' and (bb in ('lstm', 'gru') or bb not in a.compile_backbones.split(',')
                                              or inp not in a.compile_inputs.split(',')):
                        continue
                    try:
                        r = bench(bb, B, a.window, a.hidden, a.layers, a.precision, mode, inp == 'gather',
                                  a.steps, a.warmup if mode == 'eager' else max(a.warmup, 3))
                    except Exception as e:  # report and go on (e.g. out of memory at B=512 dense)
                        r = dict(side='pytorch', backbone=bb, batch=B, mode=mode, input=inp, error=str(e)[:300])
                    print(json.dumps(r), flush=True)
                    torch.cuda.empty_cache()


if __name__ == '__main__':
    main()
