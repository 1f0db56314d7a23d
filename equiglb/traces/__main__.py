"""Command line for the trace sources.

    python -m equiglb.traces list                              registered scenarios
    python -m equiglb.traces fetch eglb-2022 [--cache-dir D]   download and verify the real traces
    python -m equiglb.traces calibrate DIR [-o FILE]           synthetic-generator parameters (JSON)
    python -m equiglb.traces show NAME [--option k=v ...]      load a scenario and print its summary
"""

from __future__ import annotations

import argparse
import sys


def _parse_value(v: str):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from equiglb.scenario import ScenarioError

    ap = argparse.ArgumentParser(prog="python -m equiglb.traces", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the registered scenarios")
    f = sub.add_parser("fetch", help="download a trace set (sha256-verified, cached)")
    f.add_argument("dataset", choices=["eglb-2022"])
    f.add_argument("--cache-dir", default=None, help="cache root (default: equiglb.traces.cache_root())")
    f.add_argument("--base-url", default=None, help="mirror serving the upstream 'data/' folder")
    c = sub.add_parser("calibrate", help="calibrate the synthetic generator on a folder in the eGLB-2022 layout")
    c.add_argument("data_dir")
    c.add_argument("-o", "--output", default=None, help="write the JSON here (default: stdout)")
    s = sub.add_parser("show", help="load a scenario and print a summary")
    s.add_argument("name")
    s.add_argument("--option", "-O", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    try:
        if args.cmd == "list":
            from equiglb.traces import list_scenarios

            for name, desc in list_scenarios().items():
                print(f"{name:24s} {desc}")
        elif args.cmd == "fetch":
            from equiglb.traces.fetch import fetch

            path = fetch(args.dataset, cache_dir=args.cache_dir, base_url=args.base_url)
            print(path)
        elif args.cmd == "calibrate":
            from equiglb.traces.calibrate import calibrate

            text = calibrate(args.data_dir).to_json(args.output)
            if args.output is None:
                sys.stdout.write(text)
            else:
                print(f"wrote {args.output}", file=sys.stderr)
        elif args.cmd == "show":
            from equiglb.traces import load_scenario

            opts = {}
            for kv in args.option:
                if "=" not in kv:
                    ap.error(f"--option expects KEY=VALUE, got {kv!r}")
                k, v = kv.split("=", 1)
                opts[k] = _parse_value(v)
            print(load_scenario(args.name, **opts).summary())
    except (ScenarioError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
