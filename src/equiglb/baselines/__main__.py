"""Command line: run baselines on a scenario window and print the metrics table.

Example::

    python -m equiglb.baselines --scenario eglb-2022 --data-dir ../shared/traces/eglb-2022 \\
        --policies offline,online-eglb,min-cost --split all --csv out.csv
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from equiglb.baselines import POLICY_NAMES, compare, format_table, make_policy, write_csv, write_json
from equiglb.control import MAX_HORIZON_H
from equiglb.control.offline import SolverError, check_solver
from equiglb.forecast import FORECAST_MODELS
from equiglb.scenario import ScenarioError
from equiglb.traces import list_scenarios, load_scenario
from equiglb.validate import CliArgumentParser, OptionError, as_float, as_int, as_output_path, as_seed, one_of

DEFAULT_POLICIES = "offline,online-eglb,mpc,min-cost,min-carbon,min-water,nearest,proportional"


def number_or_inf(text: str) -> float:
    if text.lower() in ("inf", "infinity", "max"):
        return math.inf
    return float(text)


def build_parser() -> CliArgumentParser:
    """The command-line parser (usage errors: one ``error:`` line, exit status 2)."""
    p = CliArgumentParser(prog="python -m equiglb.baselines", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--scenario", default="synthetic", help="registered scenario name (default: synthetic)")
    p.add_argument("--data-dir", default=None, help="trace folder for file-based scenarios (eglb-2022)")
    p.add_argument("--split", default="all", help="named window: train, test or all (default: all)")
    p.add_argument("--horizon", type=int, default=None, help="keep only the first HORIZON hours of the scenario")
    p.add_argument("--q", type=number_or_inf, default=None,
                   help="L_q norm of the equity terms (1..100 or inf; default: scenario's)")
    p.add_argument("--mu-carbon", type=float, default=None, help="μ_c, USD per tonne CO2")
    p.add_argument("--mu-water", type=float, default=None, help="μ_w, USD per m³ of water")
    p.add_argument("--mu-social", type=float, default=None, help="μ_s, USD per unit of social cost")
    p.add_argument("--policies", default=DEFAULT_POLICIES,
                   help=f"comma-separated, from: {', '.join(POLICY_NAMES)} (default: {DEFAULT_POLICIES})")
    p.add_argument("--solver", default=None,
                   help="installed cvxpy solver tried first by offline and mpc (e.g. HIGHS)")
    p.add_argument("--mpc-horizon", type=int, default=24,
                   help=f"MPC look-ahead in hours, 1..{MAX_HORIZON_H} (default: 24)")
    p.add_argument("--forecast-model", default="calibrated",
                   help="forecasts of mpc: calibrated (default), persistence or perfect (an oracle); docs/forecasts.md")
    p.add_argument("--forecast-scale", type=float, default=1.0,
                   help="multiplier of the calibrated forecast errors (>= 0; default 1)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random policy and of mpc's calibrated forecast errors (integer >= 0)")
    p.add_argument("--csv", default=None, help="write the rows to this CSV file")
    p.add_argument("--json", default=None, help="write the rows to this JSON file (a list of rows)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 1 solver failure or write error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # every option is checked before the scenario is loaded or anything is solved
        names = [n.strip() for n in args.policies.split(",") if n.strip()]
        unknown = [n for n in names if n not in POLICY_NAMES]
        if unknown or not names:
            raise OptionError(f"--policies: unknown policy name(s) {unknown}; valid names: {', '.join(POLICY_NAMES)}")
        if args.scenario not in list_scenarios():
            raise OptionError(f"--scenario={args.scenario!r}: unknown; available: {sorted(list_scenarios())}")
        for opt in ("mu_carbon", "mu_water", "mu_social"):
            if getattr(args, opt) is not None:
                as_float("--" + opt.replace("_", "-"), getattr(args, opt), lo=0.0, unit="USD")
        if args.q is not None:
            as_float("--q", args.q, lo=1.0, allow_inf=True)
        mpc_horizon = as_int("--mpc-horizon", args.mpc_horizon, 1, MAX_HORIZON_H, unit="hours")
        seed = as_seed("--seed", args.seed)
        forecast_model = one_of("--forecast-model", args.forecast_model, FORECAST_MODELS)
        forecast_scale = as_float("--forecast-scale", args.forecast_scale, lo=0.0, hi=100.0)
        if forecast_scale != 1.0 and forecast_model != "calibrated":
            raise OptionError(f"--forecast-scale={forecast_scale!r} applies only with --forecast-model calibrated")
        solver = check_solver(args.solver, "--solver")
        csv_path = as_output_path("--csv", args.csv) if args.csv is not None else None
        json_path = as_output_path("--json", args.json) if args.json is not None else None
        if csv_path is not None and json_path is not None and csv_path == json_path:
            raise OptionError(f"--csv and --json name the same file {csv_path!r}")
        options = {"horizon": args.horizon, "q": args.q, "mu_carbon": args.mu_carbon, "mu_water": args.mu_water,
                   "mu_social": args.mu_social}
        options = {k: v for k, v in options.items() if v is not None}
        if args.data_dir is not None:
            options["data_dir"] = args.data_dir
        full = load_scenario(args.scenario, **options)
        scenario = full.split(args.split)
        if "online-eglb-tuned" in names:
            if "train" not in full.splits:
                raise OptionError(f"--policies: 'online-eglb-tuned' is tuned on a 'train' split and scenario "
                                  f"{args.scenario!r} has none")
            (a, la), (b, lb) = full.splits["train"], full.splits[args.split]
            if a < b + lb and b < a + la:
                raise OptionError(f"--policies: 'online-eglb-tuned' is tuned on the train split, which --split "
                                  f"{args.split!r} overlaps; evaluate it on a held-out split (--split test)")
        if "nearest" in names and scenario.latency is None:
            raise OptionError(f"--policies: 'nearest' needs a latency matrix and scenario {args.scenario!r} has none")
        kwargs: dict[str, dict[str, object]] = {"offline": {"solver": solver},
                                                "mpc": {"solver": solver, "horizon": mpc_horizon,
                                                        "forecast_model": forecast_model, "seed": seed,
                                                        "forecast_scale": forecast_scale},
                                                "random": {"seed": seed}}
        if "online-eglb-tuned" in names:
            kwargs["online-eglb-tuned"] = {"train": full.split("train")}
        policies = [make_policy(n, **kwargs.get(n, {})) for n in names]
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    try:
        print(f"{scenario.summary()}; split {args.split!r}; weights {scenario.weights}")
        rows = compare(scenario, policies, scenario.weights)
        print(format_table(rows))
        if csv_path:
            write_csv(rows, csv_path)
        if json_path:
            write_json(rows, json_path)
    except ScenarioError as exc:  # e.g. an infeasible window
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SolverError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
