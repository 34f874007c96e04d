"""Long fuzzing campaign (not part of the default test run).

    python scripts/fuzz.py [--examples N] [--seconds-per-input S] [--seed SEED]

Runs the property tests of tests/test_fuzz.py with many random examples (a new seed each run unless
--seed is given): generated Lua 5.4 (every statement and literal form, deep nesting, long chains, one
random damaging edit) and random TOML/JSON data files. Each input must be audited without an internal
error, within the time bound, with E101 exactly when Lua 5.4 refuses the code. Hypothesis prints the
smallest failing input and the seed that reproduces it; turn it into a regular test."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per property")
    parser.add_argument("--seconds-per-input", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    env = {
        **os.environ,
        "KUMO_AUDIT_FUZZ_EXAMPLES": str(args.examples),
        "KUMO_AUDIT_FUZZ_SECONDS": str(args.seconds_per_input),
        "KUMO_AUDIT_FUZZ_CAMPAIGN": "1",
    }
    command = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_fuzz.py"), "-q", "-x"]
    command += ["-p", "no:cacheprovider", "--hypothesis-show-statistics"]
    if args.seed is not None:
        command.append(f"--hypothesis-seed={args.seed}")
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
