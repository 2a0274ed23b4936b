"""Inference workload for a real GPU: ResNet-50 under a Poisson load, one JSON line per request.

Requests (each a batch of --batch images) arrive as a Poisson process at --rate per second (with --closed:
the next is sent when the last returns, at most --rate per second); they are served first come, first
served; each line is {"latencyMs": completion - arrival} (queueing included), the latency source
``stdout`` of the workloads file. Weights start random (no download). Exits on SIGTERM.

    python3 workloads/infer_resnet50.py --rate 150 --batch 2
"""

import argparse
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet import resnet50  # noqa: E402

stop = False


def on_sigterm(_signum, _frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=150.0, help="requests per second (Poisson)")
    ap.add_argument("--batch", type=int, default=2, help="images per request")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: until SIGTERM)")
    ap.add_argument("--closed", action="store_true",
                    help="closed loop: the next request is sent when the last returns, at most --rate per second "
                         "(--rate 0: no cap); latency is then service time (gpucolo calibrate)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, source = resnet50()
    model = model.eval().to(device)
    print(json.dumps({"event": "start", "device": device, "model": source,
                      "mpsThreadPct": os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")}), file=sys.stderr, flush=True)
    x = torch.randn(args.batch, 3, 224, 224, device=device)
    with torch.inference_mode():
        for _ in range(10):  # warm up kernels and the allocator before measuring
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()

    rng = random.Random(args.seed)
    start = time.perf_counter()
    next_arrival = start
    out = sys.stdout
    with torch.inference_mode():
        while not stop and (args.duration <= 0 or time.perf_counter() - start < args.duration):
            if args.closed:
                next_arrival = max(time.perf_counter(), next_arrival + (1.0 / args.rate if args.rate > 0 else 0.0))
            else:
                next_arrival += rng.expovariate(args.rate)
            now = time.perf_counter()
            if next_arrival > now:
                time.sleep(next_arrival - now)
            model(x)
            if device == "cuda":
                torch.cuda.synchronize()
            done = time.perf_counter()
            out.write(json.dumps({"latencyMs": round((done - next_arrival) * 1000.0, 3)}) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
