"""Command line for the trace sources.

    python -m equiglb.traces list                              registered scenarios
    python -m equiglb.traces fetch NAME [--cache-dir D] [--timeout S]  download and verify a real data set
                                                   (eglb-2022, sustain-cluster, servegen)
    python -m equiglb.traces plot world [--data-dir D] --out FILE.png  figure of the world scenario's data
    python -m equiglb.traces calibrate DIR [-o FILE]           synthetic-generator parameters (JSON)
    python -m equiglb.traces show NAME [--option k=v ...]      load a scenario and print its summary
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from equiglb.scenario import ScenarioError
from equiglb.traces import list_scenarios, load_scenario
from equiglb.traces.calibrate import calibrate
from equiglb.traces.datadir import dataset_dir
from equiglb.traces.fetch import DATASET_NAMES, fetch
from equiglb.validate import CliArgumentParser, KeyValueError, OptionError, as_float, as_output_path, parse_key_values


def _parse_value(v: str) -> Any:
    """``KEY=VALUE`` values: int, then float, then true/false, else the string (the option checks its type)."""
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, data or download error)."""
    ap = CliArgumentParser(prog="python -m equiglb.traces", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the registered scenarios")
    f = sub.add_parser("fetch", help="download a trace set (size- and sha256-verified, cached)")
    f.add_argument("dataset", choices=list(DATASET_NAMES))
    f.add_argument("--cache-dir", default=None, help="cache root (default: equiglb.traces.cache_root())")
    f.add_argument("--base-url", default=None, help="http(s) mirror serving the upstream 'data/' folder")
    f.add_argument("--timeout", type=float, default=60.0,
                   help="seconds allowed per file: connection, each read and the whole transfer (default: 60)")
    c = sub.add_parser("calibrate", help="calibrate the synthetic generator on a folder in the eGLB-2022 layout")
    c.add_argument("data_dir")
    c.add_argument("-o", "--output", default=None, help="write the JSON here (default: stdout)")
    p = sub.add_parser("plot", help="write a figure of a scenario's data (world: signals over two years, demand)")
    p.add_argument("name", choices=["world", "world-partial"])
    p.add_argument("--data-dir", default=None,
                   help="folder holding sustain-cluster/ and servegen/ (default: $EQUIGLB_DATA_DIR or the cache)")
    p.add_argument("--out", required=True, help="output image (.png, .pdf or .svg)")
    s = sub.add_parser("show", help="load a scenario and print a summary")
    s.add_argument("name")
    s.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    try:
        if args.cmd == "list":
            for name, desc in list_scenarios().items():
                print(f"{name:24s} {desc}")
        elif args.cmd == "fetch":
            timeout_s = as_float("--timeout", args.timeout, lo=0.0, lo_open=True, hi=86400.0, unit="s")
            path = fetch(args.dataset, cache_dir=args.cache_dir, base_url=args.base_url, timeout_s=timeout_s)
            print(path)
        elif args.cmd == "calibrate":
            output = as_output_path("--output", args.output) if args.output is not None else None
            text = calibrate(args.data_dir).to_json(output)
            if output is None:
                sys.stdout.write(text)
            else:
                print(f"wrote {output}", file=sys.stderr)
        elif args.cmd == "plot":
            from equiglb.traces.plot import plot_world  # noqa: PLC0415  (matplotlib only when plotting)

            out = as_output_path("--out", args.out)
            plot_world(load_scenario(args.name, data_dir=args.data_dir), out,
                       dataset_dir("servegen", args.data_dir))
            print(f"wrote {out}", file=sys.stderr)
        elif args.cmd == "show":
            try:
                opts = parse_key_values(args.option, parse=_parse_value)
            except KeyValueError as exc:
                raise OptionError(f"--option expects KEY=VALUE, got {exc.item!r}") from exc
            print(load_scenario(args.name, **opts).summary())
    except (ScenarioError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
