"""What a sweep runs: its configuration (command line or YAML file) and the trials it expands to.

A sweep is the product ``algos × grid points × seeds``; a grid point is one value per ``--grid`` key
(environment keyword arguments such as ``q``, ``mu_water``, ``scenario``). Every trial has a stable
id built from its algorithm, grid point and seed, so a resumed sweep recognizes finished trials.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from equiglb.agents.plan import MAX_COUNT, MAX_SEED, positive_int
from equiglb.validate import KeyValueError, OptionError, as_float, as_int, parse_key_values, yaml_load_unique

__all__ = ["DEFAULT_ENV_ID", "SweepConfig", "SweepError", "TrialSpec", "expand_trials", "parse_kv",
           "parse_grid", "config_from_file"]

#: The environment swept by default (the calibrated synthetic scenario, as ``train.py``).
DEFAULT_ENV_ID = "equiglb/EquitableGLB-residual-constant-v0"   # PPO's tuned settings (ppo.yml)
#: Baselines solved per grid point by default (the offline optimum is always solved: it defines the gap).
DEFAULT_BASELINES = ("offline", "online-eglb", "mpc", "min-cost")   # mpc: the default agent's base
SEARCHERS = ("optuna",)
#: upper bound of the bootstrap resamples (``--reps``): 100,000 resamples already pin a 95 % interval's ends
#: to a fraction of a percent; more only make the summary wait
MAX_REPS = 100_000
#: upper bound of the trials of one grid sweep (each is checked before any starts, then run)
MAX_TRIALS = 10_000


class SweepError(ValueError):
    """Invalid sweep configuration; the message names the option (or file) and the value."""


@dataclass
class SweepConfig:
    """Every setting of a sweep; the keys of the YAML config file are these field names."""

    out: str = "sweeps/sweep"
    env: str = DEFAULT_ENV_ID
    algos: list[str] = field(default_factory=lambda: ["ppo"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    n_timesteps: int | None = None
    grid: dict[str, list[str]] = field(default_factory=dict)
    env_kwargs: dict[str, str] = field(default_factory=dict)
    hyperparams: dict[str, str] = field(default_factory=dict)
    baselines: list[str] = field(default_factory=lambda: list(DEFAULT_BASELINES))
    eval_freq: int = 0
    cpus_per_trial: float = 1.0
    num_cpus: int | None = None
    address: str | None = None
    resume: bool = False
    search: str | None = None
    n_trials: int = 20
    reps: int = 2000
    bootstrap_seed: int = 0

    def check(self) -> None:
        """Raise :class:`SweepError` on a value that cannot be right (before any work is done)."""
        self._check_types()
        if not self.algos:
            raise SweepError("--algos: give at least one algorithm, e.g. --algos ppo,sac")
        if not self.seeds:
            raise SweepError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
        if len(set(self.seeds)) != len(self.seeds):
            raise SweepError(f"--seeds: repeated seed in {self.seeds}")
        if any(s < 0 for s in self.seeds):
            raise SweepError(f"--seeds: seeds must be >= 0, got {self.seeds}")
        if len(set(self.algos)) != len(self.algos):
            raise SweepError(f"--algos: repeated algorithm in {self.algos}")
        if self.n_timesteps is not None and self.n_timesteps < 1:
            raise SweepError(f"--n-timesteps must be >= 1, got {self.n_timesteps}")
        if not self.cpus_per_trial > 0:
            raise SweepError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise SweepError(f"--num-cpus must be >= 1, got {self.num_cpus}")
        if self.search is not None and self.search not in SEARCHERS:
            raise SweepError(f"--search {self.search!r}: available searchers are {list(SEARCHERS)}")
        if self.search is not None and self.resume:
            raise SweepError("--resume applies to grid sweeps; a --search starts afresh in a new --out folder")
        if self.n_trials < 1:
            raise SweepError(f"--n-trials must be >= 1, got {self.n_trials}")
        if not 100 <= self.reps <= MAX_REPS:
            raise SweepError(f"--reps must be in 100..{MAX_REPS} bootstrap resamples, got {self.reps}")
        if self.n_trials > MAX_COUNT:
            raise SweepError(f"--n-trials must be <= {MAX_COUNT}, got {self.n_trials}")
        if self.num_cpus is not None and self.address is None and self.cpus_per_trial > self.num_cpus:
            raise SweepError(f"--cpus-per-trial {self.cpus_per_trial:g} is more than the local Ray instance's "
                             f"--num-cpus {self.num_cpus}: no trial could ever start")
        local = os.cpu_count() or 1
        if self.num_cpus is None and self.address is None and self.cpus_per_trial > local:
            raise SweepError(f"--cpus-per-trial {self.cpus_per_trial:g} is more than this machine's {local} CPUs "
                             f"(the local Ray instance): no trial could ever start")
        n_trials = len(self.algos) * len(self.seeds) * math.prod(len(v) for v in self.grid.values())
        if n_trials > MAX_TRIALS:
            raise SweepError(f"--algos x --grid x --seeds: {n_trials} trials, more than {MAX_TRIALS}; split the sweep")
        for key, values in self.grid.items():
            if not values:
                raise SweepError(f"--grid {key}=: give at least one value")
            if len(set(values)) != len(values):
                raise SweepError(f"--grid {key}: repeated value in {values}")
            if key in self.env_kwargs:
                raise SweepError(f"--grid {key} is also fixed by --env-kwargs {key}={self.env_kwargs[key]}")
            if key == "split":
                raise SweepError("--grid split=...: a sweep trains on the train split, evaluates on the test split")
        if "split" in self.env_kwargs:
            raise SweepError("--env-kwargs split=...: a sweep trains on the train split, evaluates on the test split")

    def _check_types(self) -> None:
        """Every numeric setting an integer (or a number) in range, never silently truncated: a config file's
        ``seeds: [0.7]`` or ``n_timesteps: lots`` is refused by name, as the command line refuses them."""
        def integer(name: str, value: Any, lo: int, hi: int) -> int:
            try:
                return as_int(name, value, lo, hi)
            except OptionError as exc:
                raise SweepError(f"--{name.replace('_', '-')}: {exc}") from None

        self.seeds = [integer("seeds", s, 0, MAX_SEED) for s in self.seeds]
        if self.n_timesteps is not None:
            self.n_timesteps = integer("n_timesteps", self.n_timesteps, 1, MAX_COUNT)
        self.eval_freq = integer("eval_freq", self.eval_freq, -MAX_COUNT, MAX_COUNT)
        if self.num_cpus is not None:
            self.num_cpus = integer("num_cpus", self.num_cpus, 1, 100_000)
        self.n_trials = integer("n_trials", self.n_trials, 1, MAX_COUNT)
        self.reps = integer("reps", self.reps, 1, MAX_COUNT)
        self.bootstrap_seed = integer("bootstrap_seed", self.bootstrap_seed, 0, 2**63 - 1)
        try:
            self.cpus_per_trial = as_float("cpus_per_trial", self.cpus_per_trial, lo=0.0, lo_open=True, hi=100_000.0)
        except OptionError as exc:
            raise SweepError(f"--cpus-per-trial: {exc}") from None
        for name in ("out", "env"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise SweepError(f"--{name}: expected a non-empty text, got {getattr(self, name)!r}")
        if self.address is not None and not isinstance(self.address, str):
            raise SweepError(f"--address: expected HOST:PORT, got {self.address!r}")
        for name in ("resume",):
            if not isinstance(getattr(self, name), bool):
                raise SweepError(f"{name}: expected true or false, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (written as ``DIR/sweep.yml``)."""
        return asdict(self)


@dataclass(frozen=True)
class TrialSpec:
    """One trial: an algorithm, a grid point and a seed."""

    trial_id: str
    algo: str
    seed: int
    point: dict[str, str]
    point_label: str
    with_baselines: bool


def parse_kv(items: list[str], option: str) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{k: v}`` with the values kept as text (train.py reads them as YAML)."""
    try:
        return parse_key_values(items, parse=str.strip, unique=True)
    except KeyValueError as exc:
        raise SweepError(f"{option} {exc.item!r}: {exc.why}") from exc


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["q=1,2,inf", "mu_water=30,60"]`` -> ``{"q": ["1", "2", "inf"], "mu_water": ["30", "60"]}``."""
    grid: dict[str, list[str]] = {}
    for key, value in parse_kv(items, "--grid").items():
        values = [v.strip() for v in value.split(",")]
        if any(not v for v in values):
            raise SweepError(f"--grid {key}={value}: empty value in the list")
        grid[key] = values
    return grid


def _as_list(value: Any, key: str, source: str) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, float)):
        return [value]
    raise SweepError(f"{source}: {key} must be a list or a comma-separated string, got {value!r}")


def _as_str(value: Any) -> str:
    if isinstance(value, float) and value == float("inf"):
        return "inf"
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def config_from_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML sweep config; keys are :class:`SweepConfig` fields (``-`` or ``_``)."""
    p = Path(path)
    try:
        raw = yaml_load_unique(p.read_text()) or {}         # a key written twice is refused, not the last kept
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SweepError(f"--config {str(p)!r}: cannot read it: {exc}") from exc
    if not isinstance(raw, dict):
        raise SweepError(f"--config {str(p)!r}: expected a mapping of options, got {type(raw).__name__}")
    known = set(SweepConfig.__dataclass_fields__)
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = str(k).replace("-", "_")
        if key not in known:
            raise SweepError(f"--config {str(p)!r}: unknown key {k!r}; known keys: {sorted(known)}")
        src = f"--config {str(p)!r}"
        if key in ("algos", "baselines"):
            v = [str(x) for x in _as_list(v, key, src)]
        elif key == "seeds":
            items = _as_list(v, key, src)
            try:                                             # "0,1" text holds integers; numbers are checked as given
                v = [int(x) if isinstance(x, str) else x for x in items]
            except ValueError as exc:
                raise SweepError(f"{src}: seeds must be integers, got {v!r}") from exc
            for x in v:
                try:
                    as_int("seeds", x, 0, MAX_SEED)
                except OptionError as exc:
                    raise SweepError(f"{src}: {exc}") from None
        elif key == "grid":
            if not isinstance(v, dict):
                raise SweepError(f"{src}: grid must map each key to a list of values, got {v!r}")
            v = {str(g): [_as_str(x) for x in _as_list(vals, f"grid.{g}", src)] for g, vals in v.items()}
        elif key in ("env_kwargs", "hyperparams"):
            if isinstance(v, list):
                v = parse_kv([str(x) for x in v], f"{src} {key}")
            elif isinstance(v, dict):
                v = {str(a): _as_str(b) for a, b in v.items()}
            else:
                raise SweepError(f"{src}: {key} must be a mapping or a list of KEY=VALUE, got {v!r}")
        out[key] = v
    return out


def _label(point: dict[str, str]) -> str:
    if not point:
        return "default"
    text = ",".join(f"{k}={v}" for k, v in point.items())
    safe = re.sub(r"[^A-Za-z0-9_.=,-]+", "_", text)
    if len(safe) > 60 or safe != text:
        safe = f"{safe[:50]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return safe


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, in the order given (first key varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def expand_trials(cfg: SweepConfig) -> list[TrialSpec]:
    """The trials of a sweep: ``algos × grid points × seeds``. The baselines are solved in the trials of
    the first algorithm only (once per grid point and seed); the others solve just the offline optimum."""
    out = []
    for i, algo in enumerate(cfg.algos):
        for point in grid_points(cfg.grid):
            label = _label(point)
            for seed in cfg.seeds:
                out.append(TrialSpec(f"{algo}__{label}__seed{seed}", algo, int(seed), point, label, i == 0))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``python -m equiglb.sweep`` (defaults None: a flag overrides the config file)."""
    p.add_argument("--config", default=None, metavar="YAML", help="sweep config file; flags override its keys")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default sweeps/sweep); a folder holding another sweep is refused")
    p.add_argument("--env", default=None, help=f"registered environment id (default {DEFAULT_ENV_ID})")
    p.add_argument("--algos", default=None, help="comma-separated algorithms, e.g. ppo,sac (default ppo)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2,3,4)")
    p.add_argument("-n", "--n-timesteps", type=positive_int, default=None,
                   help="training budget per trial in env steps (default: the hyperparameter file's)")
    p.add_argument("--grid", action="append", default=None, metavar="KEY=V1,V2,...",
                   help="sweep an environment keyword argument (repeatable): q=1,2,inf mu_water=30,60,120")
    p.add_argument("--env-kwargs", nargs="+", default=None, metavar="KEY=VALUE",
                   help="fixed environment keyword arguments of every trial (YAML values), e.g. data_dir=...")
    p.add_argument("-params", "--hyperparams", nargs="+", default=None, metavar="KEY=VALUE",
                   help="hyperparameter overrides of every trial (train.py's -params)")
    p.add_argument("--baselines", nargs="*", default=None, metavar="NAME",
                   help=f"baselines solved per grid point (default {' '.join(DEFAULT_BASELINES)}; the offline "
                        "optimum is always solved)")
    p.add_argument("--eval-freq", type=int, default=None,
                   help="train.py's periodic validation every N steps (default 0: off, the final model is scored)")
    p.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs Ray reserves per trial (default 1)")
    p.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of the local Ray instance (default: all cores; ignored with --address)")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="address of a running Ray cluster (ray start --head); default: a local Ray instance")
    p.add_argument("--resume", action="store_true", default=None,
                   help="finish the missing (or failed) trials of the sweep in --out")
    p.add_argument("--search", default=None, choices=SEARCHERS,
                   help="hyperparameter search instead of a grid: scored on a validation window, never the test")
    p.add_argument("--n-trials", type=int, default=None, help="configurations tried per algorithm by --search")
    p.add_argument("--reps", type=int, default=None, help="bootstrap resamples of the confidence intervals (2000)")
    p.add_argument("--bootstrap-seed", type=int, default=None, help="seed of the bootstrap (0)")


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """Merge the config file (if any) and the flags; validate; raise :class:`SweepError`."""
    values: dict[str, Any] = config_from_file(args.config) if args.config else {}
    if args.out is not None:
        values["out"] = args.out
    if args.env is not None:
        values["env"] = args.env
    if args.algos is not None:
        values["algos"] = [a.strip() for a in args.algos.split(",") if a.strip()]
    if args.seeds is not None:
        try:
            values["seeds"] = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError as exc:
            raise SweepError(f"--seeds {args.seeds!r}: expected comma-separated integers") from exc
        if any(s > MAX_SEED for s in values["seeds"]):
            raise SweepError(f"--seeds {args.seeds!r}: seeds must be <= {MAX_SEED}")
    if args.grid is not None:
        values["grid"] = parse_grid(args.grid)
    if args.env_kwargs is not None:
        values["env_kwargs"] = parse_kv(args.env_kwargs, "--env-kwargs")
    if args.hyperparams is not None:
        values["hyperparams"] = parse_kv(args.hyperparams, "--hyperparams")
    for name in ("n_timesteps", "baselines", "eval_freq", "cpus_per_trial", "num_cpus", "address", "resume",
                 "search", "n_trials", "reps", "bootstrap_seed"):
        v = getattr(args, name)
        if v is not None:
            values[name] = v
    cfg = SweepConfig(**values)
    cfg.check()
    return cfg
