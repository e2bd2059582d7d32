"""`python -m bench [viewers|instant_start|latency|cameras …] [--quick]`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import traceback

NAMES = (
    "viewers",
    "instant_start",
    "latency",
    "cameras",
    "recording",
    "motion",
    "mosaic",
    "meeting",
    "signaling",
    "fanout",
    "cluster",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(NAMES)})",
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and steps (smoke check)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(NAMES)})")
    failed = 0
    for name in args.names or NAMES:
        module = importlib.import_module(f"bench.{name}")
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        try:
            asyncio.run(module.run(quick=args.quick))
        except Exception as err:  # one broken benchmark must not hide the others' results
            traceback.print_exc()
            print(f"bench {name} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
