"""Ledger and trace-generation speed. Prints figures; not a test.

    python benchmarks/ledger_and_traces.py

Measures: Ledger.step microseconds per slot (one episode, and a batch of 16 copies), evaluate()
seconds for a year (8760 h x 10 sites x 10 regions, K = 1), and synthetic generation of a year.
"""

from __future__ import annotations

import time

import numpy as np

import equiglb
from equiglb.ledger import Ledger, evaluate


def best_of(fn, repeat: int = 5) -> float:
    """Smallest wall time of ``repeat`` calls, seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def random_schedule(scn, rng):
    w = rng.random((scn.T, scn.N, scn.J, scn.K)) * scn.allowed[None]
    w /= w.sum(axis=(1, 3), keepdims=True)
    return w * scn.demand[:, None, :, None]


def main() -> None:
    rng = np.random.default_rng(0)
    gen = best_of(lambda: equiglb.load_scenario("synthetic", hours=8760, seed=1))
    print(f"synthetic generation, 8760 h x 10 sites: {gen * 1e3:.1f} ms")
    year = equiglb.load_scenario("synthetic", hours=8760, seed=1)
    x = random_schedule(year, rng)
    ev = best_of(lambda: evaluate(year, x))
    print(f"evaluate(), 8760 h x 10 x 10 x K=1: {ev * 1e3:.1f} ms")
    for name, batch in (("synthetic", None), ("synthetic", 16), ("synthetic-multimodel", None)):
        scn = equiglb.load_scenario(name, hours=1440)
        xs = random_schedule(scn, rng)
        led = Ledger(scn, batch_size=batch)
        steps = 1440

        def run(led: Ledger = led, xs: np.ndarray = xs, batch: int | None = batch, steps: int = steps) -> None:
            if batch is None:
                led.reset(0, steps)
                for t in range(steps):
                    led.step(t, xs[t])
            else:
                led.reset(np.zeros(batch, int), np.full(batch, steps))
                xb = np.broadcast_to(xs[:, None], (steps, batch) + xs.shape[1:])
                for t in range(steps):
                    led.step(np.full(batch, t), xb[t])

        per = best_of(run, 3) / steps
        label = f"batch {batch}" if batch else "one episode"
        print(f"Ledger.step, {name} (K={scn.K}), {label}: {per * 1e6:.1f} us per call")


if __name__ == "__main__":
    main()
