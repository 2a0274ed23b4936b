"""Training workload for a real GPU: ResNet-50 (or a small transformer) on synthetic data, paced by gpucolo.

Run under ``gpucolo host --backend nvidia`` with ``pacing: cooperative``: it calls the gpucolo hook once
per iteration, checkpoints to GPUCOLO_CHECKPOINT and exits when the runner sends SIGTERM (an MPS
share change restarts it), and resumes from that checkpoint on the next launch. Prints one JSON line
every 10 iterations: {"iterations": since this process started, "step": global step, "loss": ...}.
No dataset and no download: weights start random, inputs are random tensors.

    python3 workloads/train.py --model resnet50 --batch 32
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpucolo_hook import Pacer  # noqa: E402
from resnet import resnet50  # noqa: E402


def build(model_name, device, batch):
    import torch
    import torch.nn as nn

    if model_name == "resnet50":
        model, _ = resnet50(num_classes=1000)
        x = torch.randn(batch, 3, 224, 224, device=device)
        y = torch.randint(0, 1000, (batch,), device=device)
        return model.to(device), x, y
    layer = nn.TransformerEncoderLayer(d_model=512, nhead=8, dim_feedforward=2048, batch_first=True)
    model = nn.Sequential(nn.TransformerEncoder(layer, num_layers=6), nn.Flatten(), nn.LazyLinear(1000))
    x = torch.randn(batch, 128, 512, device=device)
    y = torch.randint(0, 1000, (batch,), device=device)
    model = model.to(device)
    with torch.no_grad():
        model(x[:1])  # materialise the lazy layer
    return model, x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["resnet50", "transformer"], default="resnet50")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this global step (0: until SIGTERM)")
    args = ap.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    pacer = Pacer(handle_sigterm=True)
    model, x, y = build(args.model, device, args.batch)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    ckpt = os.environ.get("GPUCOLO_CHECKPOINT")
    step = 0
    if ckpt and os.path.exists(ckpt):
        state = torch.load(ckpt, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
    print(json.dumps({"event": "start", "step": step, "device": device,
                      "mpsThreadPct": os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")}), flush=True)

    t0 = time.time()
    while not pacer.stop_requested and (args.max_steps == 0 or step < args.max_steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()  # the iteration ends when its kernels end, so the hook's duty is true
        step += 1
        pacer.step()
        if pacer.iterations % 10 == 0:
            print(json.dumps({"iterations": pacer.iterations, "step": step, "loss": round(float(loss), 4),
                              "itPerS": round(pacer.iterations / max(1e-9, time.time() - t0), 3)}), flush=True)

    pacer.flush_progress()
    if ckpt:
        tmp = ckpt + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
        os.replace(tmp, ckpt)
    print(json.dumps({"event": "checkpoint", "step": step, "iterations": pacer.iterations}), flush=True)


if __name__ == "__main__":
    main()
