"""Choose the ``eglb_residual`` settings on a validation window carved from the train split.

    python benchmarks/select_residual.py --protocol synthetic [--seeds 3] [--first-seed 0]
        [--candidate LABEL:KEY=VALUE,KEY=VALUE ...] [--val-hours H] [--algo ppo]
        [--data-dir ../shared/traces/eglb-2022] [-f FOLDER] [--out select.json]

The test window plays no part: every run uses the registered scenario ``holdout``
(:func:`equiglb.traces.derived.holdout_scenario`), which is the protocol's scenario cut at the end of its
train split, with the splits ``fit`` (the first hours of the train split) and ``val`` (its last
``--val-hours``; default: as long as the protocol's test window, so the validation window has the
test window's length and the inner online eGLB's step size 1/(G√T) matches the one it is evaluated
with). Then:

1. the residual base: online eGLB tuned on ``fit`` only (:func:`equiglb.baselines.eglb_tuned.tune_online_eglb`,
   windows as long as ``val``, the 21-point grid), passed to every candidate as ``eglb_eta_scale`` and
   ``eglb_z_max_scale``;
2. for every candidate and seed: train.py (``equiglb.agents.cli.main``, through
   ``agent_quality.train_one``) with the id's hyperparameter-file entry (``action_mode=eglb_residual``,
   its episodes, ``ent_coef``, ``log_std_init``, ...) plus the candidate's settings, trained on ``fit``,
   no periodic evaluations (``--eval-freq 0``: nothing looks at ``val`` during training), the final
   model evaluated on ``val``: its gap to the offline optimum of ``val``;
3. a table: per-seed validation gaps (%), mean and IQM with 95 % bootstrap CIs
   (``equiglb.stats.summarize``), beside plain online eGLB and the fit-tuned base (action 0) on
   ``val``; the **winner** is the candidate with the lowest mean validation gap.

A candidate is ``LABEL:KEY=VALUE[,KEY=VALUE...]`` (``LABEL:`` alone: the hyperparameter file as is).
``n`` (or ``n_timesteps``) is the training budget in steps; environment options (``forecast_horizon``,
``eglb_residual_max_factor``, ``episode_length``, ... : :data:`ENV_KEYS`) go to ``--env-kwargs``;
``augment=K`` trains on ``fit`` plus K × its length of hours generated from a calibration on ``fit`` only
(the scenario ``augmented``, :mod:`equiglb.traces.derived`; ``val`` is unchanged); any
other key is a hyperparameter (``-params``, e.g. ``gamma``). Values are YAML and may not contain
commas. ``action_mode=mpc_residual`` trains the MPC residual mode instead (no eGLB base; its
``mpc_horizon`` and ``mpc_residual_max_factor`` are candidate keys, and the table gains MPC with that
look-ahead on ``val``, the mode's action 0). The base's options (``eglb_eta_scale``,
``eglb_z_max_scale``) and the scenario and split options are fixed by this script (:data:`FIXED_KEYS`).
Without ``--candidate`` the grid is
:data:`DEFAULT_CANDIDATES`.

Protocols (``--protocol``) as in benchmarks/agent_quality.py: ``synthetic`` (train split 1,200 h:
``fit`` 960 h, ``val`` 240 h by default) and ``eglb-2022`` (train split 336 h: ``fit`` 215 h, ``val``
121 h by default).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import agent_quality as aq  # noqa: E402  (benchmarks/agent_quality.py: REPO on sys.path, protocols, train_one)
import gymnasium as gym  # noqa: E402

from equiglb.agents.algos import (  # noqa: E402
    ALGOS,
    HyperparamError,
    accepted_keys,
    hyperparams_path,
    parse_overrides,
    read_hyperparams_file,
)
from equiglb.agents.evaluate import scenario_of  # noqa: E402
from equiglb.baselines import MPCPolicy, OnlineEGLBPolicy, compare  # noqa: E402
from equiglb.baselines.eglb_tuned import tune_online_eglb  # noqa: E402
from equiglb.envs.core import AGENT_OPTIONS, OPTION_DEFAULTS  # noqa: E402
from equiglb.envs.slot import MPC_HORIZON_H  # noqa: E402
from equiglb.traces.derived import MAX_COPIES  # noqa: E402

FIT_SPLIT, VAL_SPLIT = "fit", "val"
#: candidate keys that are environment options (the rest are hyperparameters, ``n`` the budget)
ENV_KEYS = frozenset({*AGENT_OPTIONS, "episode_length", "random_start", "q"})
#: keys this script sets itself
FIXED_KEYS = frozenset({"eglb_eta_scale", "eglb_z_max_scale", "scenario", "scenario_options",
                        "data_dir", "split", "env_kwargs"})
#: keys of a hyperparameter entry's env_kwargs that this script sets (a candidate may set action_mode)
SCRIPT_KEYS = FIXED_KEYS | {"action_mode"}
BUDGET_KEYS = ("n", "n_timesteps")
#: candidate key: train on the scenario ``augmented`` (``fit`` plus this many copies of its length of hours
#: generated from a calibration on ``fit`` only; :mod:`equiglb.traces.derived`); 0 = ``fit`` alone
AUGMENT_KEY = "augment"
#: the id that runs a protocol whose own id fixes its split (``equiglb/EquitableGLB-eglb2022-v0`` has
#: ``split="train"``, which the holdout scenario does not have): same environment class, no split fixed
HOLDOUT_ID = "equiglb/EquitableGLB-residual-v0"   # ppo.yml's tuned entry; its settings are the id's defaults
#: the grid when no --candidate is given (stated before the first run; docs/experiments-log.md)
DEFAULT_CANDIDATES = (
    "f4-g0.9:eglb_residual_max_factor=4,gamma=0.9",
    "f1.5-g0.9:eglb_residual_max_factor=1.5,gamma=0.9",
    "f4-g0.99:eglb_residual_max_factor=4,gamma=0.99",
    "f1.5-g0.99:eglb_residual_max_factor=1.5,gamma=0.99",
    "f4-g0.9-fh6:eglb_residual_max_factor=4,gamma=0.9,forecast_horizon=6",
)
#: the action modes a candidate may train in (``action_mode=...``; default the eGLB residual)
RESIDUAL_MODES = ("eglb_residual", "mpc_residual")
LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass
class Candidate:
    """One setting: its label, environment options, hyperparameters (train.py's KEY=VALUE strings) and budget."""
    label: str
    env: dict[str, str] = field(default_factory=dict)
    hyperparams: dict[str, str] = field(default_factory=dict)
    n_timesteps: int | None = None
    augment: int = 0

    def flags(self) -> list[str]:
        """train.py flags of the candidate's hyperparameters (its environment options go with the base's)."""
        return ["-params", *(f"{k}={v}" for k, v in self.hyperparams.items())] if self.hyperparams else []


def parse_candidate(text: str) -> Candidate:
    """``LABEL:KEY=VALUE,...`` -> :class:`Candidate`; raises ``ValueError`` naming what is wrong."""
    label, sep, rest = text.partition(":")
    label = label.strip()
    if not sep or not LABEL.match(label):
        raise ValueError(f"candidate {text!r}: expected LABEL:KEY=VALUE[,KEY=VALUE...] with a label of "
                         f"letters, digits and _.+-")
    cand = Candidate(label)
    seen: set[str] = set()
    for item in (i.strip() for i in rest.split(",")):
        if not item:
            if rest.strip():
                raise ValueError(f"candidate {label!r}: empty item in {rest!r}")
            continue
        key, eq, value = (s.strip() for s in item.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"candidate {label!r}: item {item!r} is not KEY=VALUE")
        if key in seen or (key in BUDGET_KEYS and seen & set(BUDGET_KEYS)):
            raise ValueError(f"candidate {label!r}: {key!r} given twice")
        seen.add(key)
        if key in FIXED_KEYS:
            raise ValueError(f"candidate {label!r}: {key!r} is set by select_residual itself")
        try:
            parsed = parse_overrides([f"{key}={value}"])[key]
        except (HyperparamError, KeyError) as exc:
            raise ValueError(f"candidate {label!r}: {item!r}: {exc}") from exc
        if key == "action_mode" and parsed not in RESIDUAL_MODES:
            raise ValueError(f"candidate {label!r}: action_mode must be one of {RESIDUAL_MODES}, got {value!r}")
        if key == AUGMENT_KEY:
            if isinstance(parsed, bool) or not isinstance(parsed, int) or not 0 <= parsed <= MAX_COPIES:
                raise ValueError(f"candidate {label!r}: {key} must be an integer in 0..{MAX_COPIES}, got {value!r}")
            cand.augment = parsed
        elif key in BUDGET_KEYS:
            if isinstance(parsed, bool) or not isinstance(parsed, int) or parsed < 1:
                raise ValueError(f"candidate {label!r}: {key} must be a positive integer, got {value!r}")
            cand.n_timesteps = parsed
        elif key in ENV_KEYS:
            cand.env[key] = value
        else:
            cand.hyperparams[key] = value
    return cand


def parse_candidates(texts: list[str] | tuple[str, ...]) -> list[Candidate]:
    """All candidates, labels distinct."""
    cands = [parse_candidate(t) for t in texts]
    labels = [c.label for c in cands]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"candidate label {dup[0]!r} given twice")
    return cands


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=("eglb-2022", "synthetic"), default="synthetic",
                   help="scenario and environment id (as benchmarks/agent_quality.py)")
    p.add_argument("--algo", choices=sorted(ALGOS), default="ppo", help="RL algorithm")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per candidate (default 3)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + S - 1")
    p.add_argument("--candidate", action="append", default=None, metavar="LABEL:KEY=VALUE,...",
                   help="a setting to try (repeat the flag); default: the five of DEFAULT_CANDIDATES")
    p.add_argument("--val-hours", type=int, default=None,
                   help="length of the validation window at the end of the train split (default: the test "
                        "window's length)")
    p.add_argument("--data-dir", default=str(aq.REPO.parent / "shared" / "traces" / "eglb-2022"),
                   help="folder of the eGLB-2022 traces (eglb-2022 protocol)")
    p.add_argument("-f", "--log-folder", default=None, help="where the run folders go (default: a temp folder)")
    p.add_argument("--out", default=None, metavar="FILE.json", help="save per-seed gaps and summaries as JSON")
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[Candidate]:
    """Every bad value is an error naming the option, before any tuning or training; returns the candidates."""
    aq.check_protocol_args(p, args)
    if args.val_hours is not None and args.val_hours < 1:
        p.error(f"--val-hours must be >= 1, got {args.val_hours}")
    try:
        cands = parse_candidates(args.candidate or DEFAULT_CANDIDATES)
    except ValueError as exc:
        p.error(f"--candidate: {exc}")
    known = set(accepted_keys(args.algo))
    for c in cands:
        bad = sorted(set(c.hyperparams) - known)
        if bad:
            p.error(f"--candidate {c.label}: {bad[0]!r} is neither an environment option ({sorted(ENV_KEYS)}) nor a "
                    f"{args.algo} hyperparameter")
    return cands


def run_id_and_options(algo: str, env_id: str) -> tuple[str, list[str]]:
    """The id train.py runs the holdout scenario with, and the env options that make it train as ``env_id``.

    An id whose registration fixes a split (the eGLB-2022 ids: ``split="train"``) cannot make the holdout
    scenario (splits ``fit``/``val``), so it runs as :data:`HOLDOUT_ID` with ``env_id``'s registered settings
    (and the environment's default for any option only :data:`HOLDOUT_ID`'s registration sets); the two ids'
    hyperparameter entries must then agree (checked)."""
    own_kw = dict(gym.spec(env_id).kwargs or {})
    if "split" not in own_kw:
        return env_id, []
    entries = read_hyperparams_file(hyperparams_path(algo))
    own, run = entries.get(env_id, entries["default"]), entries.get(HOLDOUT_ID, entries["default"])
    if own != run:
        raise SystemExit(f"{env_id} runs the holdout scenario as {HOLDOUT_ID}, but their {algo} entries differ; "
                         f"align them in {hyperparams_path(algo)}")
    kw = {k: v for k, v in own_kw.items() if k not in SCRIPT_KEYS}
    for k in (gym.spec(HOLDOUT_ID).kwargs or {}):   # what HOLDOUT_ID's registration sets and env_id's does not
        if k not in kw and k not in SCRIPT_KEYS:
            if k not in OPTION_DEFAULTS:
                raise SystemExit(f"{HOLDOUT_ID}'s registration sets {k}, which {env_id}'s does not; add it there")
            kw[k] = OPTION_DEFAULTS[k]
    return HOLDOUT_ID, [f"{k}={json.dumps(v)}" for k, v in kw.items()]


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    cands = check_args(p, args)
    env_id, needs_data = aq.PROTOCOLS[args.protocol]
    data = ["data_dir=" + str(args.data_dir)] if needs_data else []
    full = scenario_of(env_id, parse_overrides(data))
    base_name = full.name
    (a0, an), (b0, bn) = full.splits[aq.TRAIN_SPLIT], full.splits[aq.TEST_SPLIT]
    val_hours = bn if args.val_hours is None else args.val_hours
    if val_hours >= an:
        p.error(f"--val-hours {val_hours}: the train split has only {an} h")
    options = {"base": base_name, "val_fraction": val_hours / an}
    run_id, own_kwargs = run_id_and_options(args.algo, env_id)
    kv = [*data, "action_mode=eglb_residual", *own_kwargs]
    hold = scenario_of(run_id, parse_overrides([*kv, "scenario=holdout", "scenario_options=" + json.dumps(options)]))
    if hold.weights != full.weights:
        raise SystemExit(f"{run_id} on the holdout scenario has weights {hold.weights}, {env_id} {full.weights}")
    (f0, fn), (v0, vn) = hold.splits[FIT_SPLIT], hold.splits[VAL_SPLIT]
    if vn != val_hours or hold.T > a0 + an or f0 + fn != v0:
        raise SystemExit(f"holdout of {base_name!r}: fit {f0}+{fn} h, val {v0}+{vn} h, {hold.T} h in all: expected "
                         f"val of {val_hours} h ending at the train split's end ({a0 + an} h)")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    via = f" (run as {run_id} with {' '.join(own_kwargs)})" if run_id != env_id else ""
    print(f"=== select_residual: protocol {args.protocol}, {env_id}{via}, algo {args.algo}, seeds {seeds} ===\n"
          f"scenario holdout of {base_name!r}: fit hours {f0}..{f0 + fn - 1}, val hours {v0}..{v0 + vn - 1} "
          f"({vn} h); the test window ({b0}..{b0 + bn - 1}) is not in it", flush=True)

    t_tune = time.perf_counter()
    bt = tune_online_eglb(hold.split(FIT_SPLIT), hold.weights, window_hours=vn)
    kv += [f"eglb_eta_scale={bt.eta_scale!r}", f"eglb_z_max_scale={bt.z_max_scale!r}"]
    print(f"residual base: online eGLB tuned on fit: eta_scale {bt.eta_scale:g}, z_max_scale {bt.z_max_scale:g} "
          f"(fit windows of {bt.window_hours} h at {list(bt.starts)}; mean fit gap {100 * bt.score:+.2f} % vs "
          f"default {100 * bt.default_score:+.2f} %; {time.perf_counter() - t_tune:.0f} s)", flush=True)

    # the references on val: plain online eGLB and the base (action 0); their solve time is the wall reference
    window, w = hold.split(VAL_SPLIT), hold.weights
    base_policy = OnlineEGLBPolicy(eta_scale=bt.eta_scale, z_max_scale=bt.z_max_scale)
    base_policy.name = "online-eglb (fit-tuned)"  # an instance attribute: compare needs distinct names
    horizons = sorted({int(c.env.get("mpc_horizon", MPC_HORIZON_H)) for c in cands
                       if c.env.get("action_mode") == "mpc_residual"})
    mpcs = [MPCPolicy(horizon=h) for h in horizons]
    for m in mpcs:
        m.name = f"mpc-{m.horizon}h"         # an instance attribute, as above
    ref = compare(window, [OnlineEGLBPolicy(), base_policy, *mpcs], w)
    j_off = ref[0]["objective"] / (1 + ref[0]["gap_to_offline"])
    for c in cands:
        print(f"candidate {c.label}: env {c.env or '{}'}, hyperparams {c.hyperparams or '{}'}, "
              f"steps {c.n_timesteps or 'from the hyperparameter file'}", flush=True)

    log = Path(args.log_folder or tempfile.mkdtemp(prefix="select_residual_"))
    log.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []
    for c in cands:
        cargs = argparse.Namespace(algo=args.algo, n_timesteps=c.n_timesteps, extra=[])
        scenario = ["scenario=holdout", "scenario_options=" + json.dumps(options)]
        if c.augment:      # fit grows by generated hours calibrated on fit only; val is unchanged (J_off check)
            scenario = ["scenario=augmented", "scenario_options=" + json.dumps(
                {"source": "holdout", "split": FIT_SPLIT, "copies": c.augment, **options})]
        base_kv = kv
        if c.env.get("action_mode") == "mpc_residual":     # the MPC base has no eGLB options
            base_kv = [f for f in kv if not f.startswith(("eglb_eta_scale=", "eglb_z_max_scale=", "action_mode="))]
        env_flags = ["--env-kwargs", *base_kv, *scenario, *(f"{k}={v}" for k, v in c.env.items())]
        runs = []
        for s in seeds:
            r = aq.train_one(cargs, run_id, env_flags, s, log / c.label, splits=(FIT_SPLIT, VAL_SPLIT),
                             more_flags=("--eval-freq", "0", *c.flags()))
            if abs(r["objective_usd"] / (1 + r["gap"]) / j_off - 1) > 1e-6:
                raise SystemExit(f"{c.label} seed {s}: its offline optimum differs from val's: not the same window")
            print(f"{c.label} seed {s}: val gap {100 * r['gap']:+.2f} % ({r['wall_s']:.0f} s)", flush=True)
            runs.append(r)
        results.append({**aq.row(c.label, [100 * r["gap"] for r in runs], seeds), "runs": runs,
                        "env": c.env, "hyperparams": c.hyperparams, "n_timesteps": c.n_timesteps,
                        "wall_s": sum(r["wall_s"] for r in runs)})
    wall = time.perf_counter() - t0
    refs = [aq.row("online-eglb", [100 * ref[0]["gap_to_offline"]], None),
            aq.row("base (fit-tuned eGLB)", [100 * ref[1]["gap_to_offline"]], None),
            *(aq.row(f"mpc {h} h (mpc_residual base)", [100 * r["gap_to_offline"]], None)
              for h, r in zip(horizons, ref[2:]))]

    print(f"\nGap to the offline optimum on val ({vn} h, hours {v0}..{v0 + vn - 1}, J_off = {j_off:,.2f} USD), in %:")
    print(f"{'candidate':<22} {'n':>2} {'mean':>7} [95 % CI]        {'IQM':>7} [95 % CI]        per seed   (wall)")
    for r in results:
        print(f"{aq.fmt(r)}   ({r['wall_s']:.0f} s)")
    for r in refs:
        print(aq.fmt(r))
    ranked = sorted(results, key=lambda r: r["mean"])
    win = ranked[0]
    margin = f"; runner-up {ranked[1]['policy']} {ranked[1]['mean']:+.2f} %" if len(ranked) > 1 else ""
    print(f"winner by val mean: {win['policy']} ({win['mean']:+.2f} % [{win['mean_ci_low']:+.2f}, "
          f"{win['mean_ci_high']:+.2f}]{margin})")
    ref_s = float(ref[0]["wall_time_s"])
    print(f"wall time {wall:.0f} s for {len(cands)} x {len(seeds)} runs; reference on this machine: plain online eGLB "
          f"on val {ref_s:.2f} s; run folders under {log}")
    if args.out:
        out = {"protocol": args.protocol, "env_id": env_id, "run_id": run_id, "algo": args.algo, "seeds": seeds,
               "fit_split": {"start_h": f0, "hours": fn}, "val_split": {"start_h": v0, "hours": vn},
               "residual_base": {"eta_scale": bt.eta_scale, "z_max_scale": bt.z_max_scale},
               "offline_objective_usd": j_off, "candidates": results, "references": refs,
               "winner": win["policy"], "wall_s": wall, "online_eglb_wall_s": ref_s}
        Path(args.out).write_text(json.dumps(out, indent=2))
        print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
