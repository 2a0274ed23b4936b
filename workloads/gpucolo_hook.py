"""gpucolo's cooperative pacing hook: call ``Pacer.step()`` once per training iteration.

The host runner (``gpucolo host --backend nvidia``, training ``pacing: cooperative``) keeps a lease file
fresh and names it in GPUCOLO_LEASE_FILE. The hook sleeps as the lease says:

* ``{"mode": "duty", "duty": d, ...}``: sleep a fraction ``d`` of wall time (after an iteration that
  took ``w`` seconds, sleep ``w * d / (1 - d)``; ``d`` is capped at 0.95);
* ``{"mode": "per-iteration", "sleepMs": s, ...}``: sleep ``s`` ms after each iteration.

A lease past its ``expiresUnixMs`` (the runner died or hung) means no sleep at all, checked again every
50 ms while sleeping: a dead runner never stalls training. Without GPUCOLO_LEASE_FILE the hook does
nothing, so the same program runs unmanaged.

The hook also writes ``{"iterations": n, "pid": pid}`` to GPUCOLO_PROGRESS_FILE (at most every 0.2 s),
which is how the runner measures training throughput, and offers ``stop_requested``: set by SIGTERM,
the runner's request to checkpoint and exit (it restarts the job with a new MPS thread share).

    from gpucolo_hook import Pacer
    pacer = Pacer(handle_sigterm=True)
    for batch in loader:
        train_step(batch)
        pacer.step()
        if pacer.stop_requested:
            save_checkpoint(os.environ["GPUCOLO_CHECKPOINT"])
            break
"""

import json
import os
import signal
import time

MAX_DUTY = 0.95
MAX_SLEEP_S = 30.0
CHUNK_S = 0.05


class Pacer:
    """Sleeps between training iterations as the runner's lease says; never past the lease."""

    def __init__(self, lease_file=None, progress_file=None, handle_sigterm=False,
                 clock=time.monotonic, wall=time.time, sleep=time.sleep, reread_s=0.05):
        self.lease_file = lease_file if lease_file is not None else os.environ.get("GPUCOLO_LEASE_FILE")
        self.progress_file = progress_file if progress_file is not None else os.environ.get("GPUCOLO_PROGRESS_FILE")
        self.iterations = 0
        self.slept_s = 0.0
        self.stop_requested = False
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._reread_s = reread_s
        self._lease = None
        self._lease_read_at = float("-inf")
        self._last_step_end = None
        self._last_progress = float("-inf")
        if handle_sigterm:
            signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, _signum, _frame):
        self.stop_requested = True

    def lease(self, force=False):
        """The current lease if it is valid (unexpired), else None."""
        if not self.lease_file:
            return None
        now = self._clock()
        if force or now - self._lease_read_at >= self._reread_s:
            self._lease_read_at = now
            try:
                with open(self.lease_file, "r", encoding="utf-8") as f:
                    self._lease = json.load(f)
            except (OSError, ValueError):
                self._lease = None
        lease = self._lease
        if not isinstance(lease, dict):
            return None
        try:
            if self._wall() * 1000.0 >= float(lease.get("expiresUnixMs", 0)):
                return None
        except (TypeError, ValueError):
            return None
        return lease

    @staticmethod
    def _wanted_s(lease, work_s):
        """Seconds to sleep after an iteration whose work took work_s, under a lease."""
        if lease is None:
            return 0.0
        if lease.get("mode") == "per-iteration":
            return max(0.0, float(lease.get("sleepMs", 0))) / 1000.0
        duty = min(MAX_DUTY, max(0.0, float(lease.get("duty", 0))))
        if duty <= 0 or work_s is None:
            return 0.0
        return work_s * duty / (1.0 - duty)

    def step(self):
        """Call once per training iteration (after the optimizer step). Returns the seconds slept."""
        now = self._clock()
        self.iterations += 1
        self._write_progress(now)
        work_s = None if self._last_step_end is None else max(0.0, now - self._last_step_end)
        total = min(MAX_SLEEP_S, self._wanted_s(self.lease(), work_s))
        slept = 0.0
        if total > 0 and not self.stop_requested:
            end = now + total
            while not self.stop_requested:
                left = end - self._clock()
                if left <= 0:
                    break
                chunk = min(left, CHUNK_S)
                self._sleep(chunk)
                slept += chunk
                lease = self.lease(force=True)
                # An expired lease, or a setting that no longer asks for sleep, ends the sleep at once.
                if lease is None or self._wanted_s(lease, 1.0) <= 0:
                    break
        self.slept_s += slept
        self._last_step_end = self._clock()
        return slept

    def _write_progress(self, now):
        if not self.progress_file or now - self._last_progress < 0.2:
            return
        self._last_progress = now
        tmp = self.progress_file + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"iterations": self.iterations, "pid": os.getpid()}, f)
            os.replace(tmp, self.progress_file)
        except OSError:
            pass

    def flush_progress(self):
        """Writes the iteration count now (before a checkpoint exit)."""
        self._last_progress = float("-inf")
        self._write_progress(self._clock())
