"""The model zoo's evidence table: model x policy x order -> works, final loss vs native float32.

Trains each model of tests/zoo_models.py for the same few SGD steps natively
in float32 and under every zoo policy in both orders
(``jax.jit(jax.grad(emulate(loss)))`` and ``jax.jit(emulate(jax.grad(loss)))``),
and prints one row per run: the outcome, the final loss and its ratio to the
float32 one, and the CPU seconds of the run (compile included). An outcome
other than ``ok`` is explained in the notes column. Both orders emulate the
backward pass, so deterministic policies give the same losses in both.

Run: python benchmarks/zoo_table.py [--models cnn,eqx_mlp] [--policies bf16,fp8] [--steps N]
"""

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import zoo_models as zoo  # noqa: E402


def run(name, spec, order, steps):
    t0 = time.process_time()
    try:
        losses = zoo.train(name, spec, order, steps)
    except Exception as e:  # noqa: BLE001 - the table reports every failure
        return "error", None, time.process_time() - t0, f"{type(e).__name__}: {str(e)[:100]}"
    seconds = time.process_time() - t0
    if not np.all(np.isfinite(losses)):
        return "nan", losses, seconds, "a non-finite loss"
    if not losses[-1] < losses[0]:
        return "no-descent", losses, seconds, "the loss did not decrease"
    return "ok", losses, seconds, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(zoo.MODELS))
    ap.add_argument("--policies", default=",".join(zoo.POLICIES))
    ap.add_argument("--steps", type=int, default=zoo.STEPS)
    args = ap.parse_args()
    print(f"x64={zoo.X64}, {args.steps} SGD steps; ratio = final loss / final float32 loss; s = CPU seconds")
    print(f"{'model':15} {'policy':8} {'order':14} {'outcome':10} {'final':>8} {'ratio':>6} {'s':>6}  notes")
    total = time.process_time()
    for name in args.models.split(","):
        t0 = time.process_time()
        ref = zoo.train(name, None, steps=args.steps)
        print(
            f"{name:15} {'float32':8} {'native':14} {'ok':10} {ref[-1]:8.4f} {1:6.3f} {time.process_time() - t0:6.1f}"
        )
        for policy in args.policies.split(","):
            for order in zoo.ORDERS:
                outcome, losses, seconds, notes = run(name, zoo.POLICIES[policy], order, args.steps)
                final = f"{losses[-1]:8.4f}" if losses is not None else f"{'-':>8}"
                ratio = f"{losses[-1] / ref[-1]:6.3f}" if losses is not None else f"{'-':>6}"
                print(
                    f"{name:15} {policy:8} {order:14} {outcome:10} {final} {ratio} {seconds:6.1f}  {notes}", flush=True
                )
    print(f"total CPU seconds: {time.process_time() - total:.0f}")


if __name__ == "__main__":
    main()
