"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import sys

from bench import convert_bench, edge_bench, ingest_bench, make_manifest_bench


def main() -> int:
    make_manifest_bench.main(sys.argv[1:])
    convert_bench.main([])
    edge_bench.main([])
    ingest_bench.main([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
