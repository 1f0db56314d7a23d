"""The robust wrapper's gap beside its agent's, on the test windows.

    python benchmarks/robust_gap.py [--data-dir ../shared/traces/eglb-2022] [--margin 0.05]

On the synthetic test window and (when the traces are present) the eGLB-2022 test window with the full
and the partial mask: the offline optimum (hindsight, an oracle), online eGLB (no forecasts), MPC with a
24-hour look-ahead on calibrated forecasts (the agent: what the residual modes plan with), that MPC inside
:class:`equiglb.agents.RobustPolicy` (falls back to online eGLB), and random actions alone and wrapped
(an adversary). Every J is the ledger's; the last lines give the share of slots where each wrapper
played its agent and check the bound J_w <= J_e + margin * J+_e (docs/robust.md) by the ledger.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import equiglb  # noqa: E402
from equiglb.agents import RobustPolicy  # noqa: E402
from equiglb.agents.robust import RobustnessWarning, slot_terms  # noqa: E402
from equiglb.baselines import make_policy  # noqa: E402
from equiglb.baselines.compare import format_table, run_policies  # noqa: E402
from equiglb.evaluation import scenario_of  # noqa: E402


def _random_actions(rng: np.random.Generator, dim: int):
    """An adversary: uniform random site scores in [-1, 1]^dim every slot."""
    return lambda obs: rng.uniform(-1, 1, dim).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "traces" / "eglb-2022"),
                   help="eGLB-2022 trace folder (its rows are skipped when absent)")
    p.add_argument("--margin", type=float, default=0.05, help="the wrapper's margin (default 0.05)")
    args = p.parse_args(argv)
    ids = [("equiglb/EquitableGLB-v0", {})]
    if (Path(args.data_dir) / "AI_workload.csv").is_file():
        ids += [("equiglb/EquitableGLB-eglb2022-v0", {"data_dir": args.data_dir}),
                ("equiglb/EquitableGLB-eglb2022-partial-v0", {"data_dir": args.data_dir})]
    else:
        print(f"(eGLB-2022 traces not found at {args.data_dir}: only the synthetic window)")
    pct = f"{100 * args.margin:g}%"
    ok = True
    for env_id, kw in ids:
        full = scenario_of(env_id, kw)
        win = full.split("test")
        rng = np.random.default_rng(0)
        dim = win.N                                   # site_scores actions of these ids
        mpc = make_policy("mpc", horizon=24)
        mpc.name = "mpc-24 calibrated"
        rob = RobustPolicy(make_policy("mpc", horizon=24), margin=args.margin, name=f"mpc-24 calibrated (robust {pct})")
        rnd = RobustPolicy(_random_actions(rng, dim), margin=args.margin, env=env_id,
                           env_kwargs=kw, name=f"random actions (robust {pct})")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RobustnessWarning)
            res = run_policies(win, [make_policy("offline"), make_policy("online-eglb"), mpc, rob, rnd], win.weights)
        x_rand = rnd.agent.schedule_executed()           # the agent acts on its own trajectory: that is it alone
        j_off = res.rows[0]["objective"]
        j_rand = equiglb.evaluate(win, x_rand, win.weights).objective_usd
        x_e = res.schedules["online-eglb"]
        j_e = res.rows[1]["objective"]
        j_plus = j_e - sum(float(np.minimum(win.price[t], 0) @ slot_terms(win, win.weights, t, x_e[t])[1])
                           for t in range(win.T))
        print(f"\n{env_id} test window ({win.T} h)")
        print(format_table(res.rows, ("policy", "information", "objective", "gap_to_offline")))
        print(f"random actions alone: J {j_rand:,.2f} USD, gap {100 * (j_rand / j_off - 1):.3f} %")
        for w in (rob, rnd):
            j_w = res.rows[[r["policy"] for r in res.rows].index(w.name)]["objective"]
            holds = j_w - j_e <= args.margin * j_plus * (1 + 1e-10)
            ok &= holds
            bound = 100 * args.margin * j_plus / j_e
            print(f"{w.name}: agent played in {w.agent_share:.0%} of the slots; J_w / J_e - 1 = "
                  f"{100 * (j_w / j_e - 1):.3f} %, bound margin * J+_e / J_e = {bound:.3f} %: "
                  f"{'holds' if holds else 'VIOLATED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
