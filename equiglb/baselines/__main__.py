"""Command line: run baselines on a scenario window and print the metrics table.

Example::

    python -m equiglb.baselines --scenario eglb-2022 --data-dir ../shared/traces/eglb-2022 \\
        --policies offline,online-eglb,min-cost --split all --csv out.csv
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

from equiglb.baselines import POLICY_NAMES, compare, format_table, make_policy, write_csv, write_json
from equiglb.scenario import ScenarioError
from equiglb.traces import TraceError, list_scenarios, load_scenario

DEFAULT_POLICIES = "offline,online-eglb,mpc,min-cost,min-carbon,min-water,nearest,proportional"


def _q(text: str) -> float:
    if text.lower() in ("inf", "infinity", "max"):
        return math.inf
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--q must be a number >= 1 or 'inf', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m equiglb.baselines", description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="synthetic", help="registered scenario name (default: synthetic)")
    p.add_argument("--data-dir", default=None, help="trace folder for file-based scenarios (eglb-2022)")
    p.add_argument("--split", default="all", help="named window: train, test or all (default: all)")
    p.add_argument("--horizon", type=int, default=None, help="keep only the first HORIZON hours of the scenario")
    p.add_argument("--q", type=_q, default=None, help="L_q norm of the equity terms (1..inf; default: scenario's)")
    p.add_argument("--mu-carbon", type=float, default=None, help="μ_c, USD per tonne CO2")
    p.add_argument("--mu-water", type=float, default=None, help="μ_w, USD per m³ of water")
    p.add_argument("--mu-social", type=float, default=None, help="μ_s, USD per unit of social cost")
    p.add_argument("--policies", default=DEFAULT_POLICIES,
                   help=f"comma-separated, from: {', '.join(POLICY_NAMES)} (default: {DEFAULT_POLICIES})")
    p.add_argument("--solver", default=None, help="cvxpy solver tried first by offline and mpc (e.g. HIGHS)")
    p.add_argument("--mpc-horizon", type=int, default=24, help="MPC look-ahead in hours (default: 24)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random policy")
    p.add_argument("--csv", default=None, help="write the rows to this CSV file")
    p.add_argument("--json", default=None, help="write the rows to this JSON file (a list of rows)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown or not names:
        print(f"error: unknown policy name(s) {unknown}; valid names: {', '.join(POLICY_NAMES)}", file=sys.stderr)
        return 2
    options = {"horizon": args.horizon, "q": args.q, "mu_carbon": args.mu_carbon, "mu_water": args.mu_water,
               "mu_social": args.mu_social}
    options = {k: v for k, v in options.items() if v is not None}
    if args.data_dir is not None:
        options["data_dir"] = args.data_dir
    try:
        if args.scenario not in list_scenarios():
            raise ScenarioError(f"unknown scenario {args.scenario!r}; available: {sorted(list_scenarios())}")
        scenario = load_scenario(args.scenario, **options).split(args.split)
    except (ScenarioError, TraceError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kwargs = {"offline": {"solver": args.solver}, "mpc": {"solver": args.solver, "horizon": args.mpc_horizon},
              "random": {"seed": args.seed}}
    policies = [make_policy(n, **kwargs.get(n, {})) for n in names]
    print(f"{scenario.summary()}; split {args.split!r}; weights {scenario.weights}")
    rows = compare(scenario, policies, scenario.weights)
    print(format_table(rows))
    if args.csv:
        write_csv(rows, args.csv)
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
