#!/usr/bin/python3
"""bench_torch_train.py - PyTorch twin of bench/bench_train.c, and the ratio table.

Runs the same policies (tools/gen_nn_fixtures.py's Policy: input Linear + backbone + six heads,
the same loss over every window position, AdamW with clipping) in PyTorch on CPU with the same
batch, window, sizes and thread count, then runs the C benchmark and prints frames/s of both and
the ratio cphil / PyTorch. PyTorch gets the dense input (B, W, E) with a dense input Linear,
which is how a PyTorch policy (and the ONNX export) takes the embedding; its bf16 row uses
torch.autocast('cpu', bfloat16). Noisy on a shared machine: medians of a few steps.

  /usr/bin/python3 tools/bench_torch_train.py [--cphil build/rel/bench/bench_train]
      [--backbones mlp,lstm,gru,mamba,attention] [--threads 2] [--steps 3] [--batch 64]
      [--window 60] [--hidden 256] [--layers 2] [--no-bf16]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
torch.set_default_dtype(torch.float32)
import gen_nn_fixtures as G  # noqa: E402  (the model definitions; generating nothing on import)

torch.set_default_dtype(torch.float32)

# the default embedding layout of src/game (checked against the C bench's header line)
N_CONT, N_IDS, E = 99, 10, 2185


def torch_bench(backbone, B, W, H, L, steps, bf16):
    cfg = dict(backbone=backbone, n_cont=N_CONT, n_ids=N_IDS, E=E, hidden=H, num_layers=L,
               mlp_hidden=[512, 512], state_size=16, expand=2, conv_size=4, num_heads=4, window=W)
    pol = G.Policy(cfg).float()
    dense = torch.zeros(B, W, E)
    dense[..., :N_CONT] = torch.randn(B, W, N_CONT)
    ids = torch.randint(N_CONT, E, (B, W, N_IDS))
    dense.scatter_(-1, ids, 1.0)
    buttons = (torch.rand(B, W, 8) < 0.2).to(torch.uint8)
    cls = torch.stack([torch.randint(0, 17, (B, W)) for _ in range(4)] + [torch.randint(0, 5, (B, W))], -1)
    weight = torch.ones(B, W)
    pw = torch.ones(8)
    opt = torch.optim.AdamW(pol.parameters(), lr=1e-4, weight_decay=1e-5)
    times = []
    for it in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        if bf16:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                logits = pol(dense)
        else:
            logits = pol(dense)
        loss = G.policy_loss(logits.float(), buttons, cls, weight, pw, 1.0, 0.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), 1.0)
        opt.step()
        if it:
            times.append(time.perf_counter() - t0)
    times.sort()
    return B * W / times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cphil', default='build/rel/bench/bench_train')
    ap.add_argument('--backbones', default='mlp,lstm,gru,mamba,attention')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--window', type=int, default=60)
    ap.add_argument('--hidden', type=int, default=256)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--no-bf16', action='store_true')
    ap.add_argument('--precisions', default='f32,bf16', help='PyTorch precisions to run')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    precs = [p for p in a.precisions.split(',') if not (a.no_bf16 and p == 'bf16')]
    rows = []
    for bb in a.backbones.split(','):
        c_res = {}
        if a.cphil:
            out = subprocess.run([a.cphil, '--backbone', bb, '--threads', str(a.threads), '--steps',
                                  str(max(a.steps, 3)), '--batch', str(a.batch), '--window', str(a.window),
                                  '--hidden', str(a.hidden), '--layers', str(a.layers), '--json'],
                                 check=True, capture_output=True, text=True).stdout
            for r in json.loads(out):
                c_res[r['precision']] = r['frames_per_s']
        for p in precs:
            t = torch_bench(bb, a.batch, a.window, a.hidden, a.layers, a.steps, p == 'bf16')
            c = c_res.get(p)
            rows.append((bb, p, c, t))
            print('%-10s %-5s cphil %9s fr/s   pytorch %9.0f fr/s   ratio %s' %
                  (bb, p, '%.0f' % c if c else '-', t, '%.1fx' % (c / t) if c else '-'), flush=True)
    print('\n| backbone | precision | cphil frames/s | PyTorch frames/s | ratio |')
    print('|---|---|---|---|---|')
    for bb, p, c, t in rows:
        print('| %s | %s | %s | %.0f | %s |' % (bb, p, '%.0f' % c if c else '-', t, '%.1fx' % (c / t) if c else '-'))
    print('\n(B %d, window %d, hidden %d, layers %d, E %d, %d threads; torch %s; noisy shared machine)' %
          (a.batch, a.window, a.hidden, a.layers, E, a.threads, torch.__version__))


if __name__ == '__main__':
    main()
