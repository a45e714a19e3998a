"""Command line: ``python -m polykeras backends | demo | conformance`` (also installed as the
``polykeras`` console script).

Exit status, for every command:

- 0: the command did what it was asked and everything was as expected.
- 1: it ran, or listed, and found a problem.  ``backends``: the selected backend is unknown
  or not usable here, a backend plugin failed to load, a backend fails to start or does not
  implement the contract, or the config is invalid.  ``conformance``: a result was not as
  expected, or a plugin failed to load (see :mod:`polykeras.conformance.cli`).  ``demo``:
  scikit-learn (the ``demo`` extra) is missing.
- 2: usage error: a bad option or value; a backend named on the command line that is
  unknown (with a close name, if any: "did you mean 'numpy'?") or, for ``demo``, not usable
  here; ``conformance`` paths none of which holds a document.  Nothing is run.
- 3: ``conformance`` only: nothing could run, since no backend could be discovered (the
  plugins are not installed, or failed to load) or no selected backend is usable here.

``conformance`` writes its report only when it ran something: after exit 2 or 3 the last
report is left as it was.
"""

from __future__ import annotations

import argparse
import os
import sys


def _prog() -> str:
    """``polykeras`` when run as the console script, else ``python -m polykeras``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    stem = name.split(".")[0]  # polykeras, polykeras.exe, polykeras-script.py
    if stem == "polykeras" or stem.startswith("polykeras-"):
        return "polykeras"
    return "python -m polykeras"


def _cmd_backends(args: argparse.Namespace) -> int:
    from . import backends, config, plugins

    problems: list[str] = []
    try:
        active, source = config.requested_backend()
    except config.ConfigError as exc:
        active, source = None, str(exc)
        problems.append(str(exc))
    specs = plugins.registry().backends
    rows = []
    usable_here: dict[str, str] = {}  # name -> "" when usable, else why not
    for b in backends():
        usable, note = b.usable, b.reason or b.description
        if usable:  # start it and check it against the contract (imports its framework)
            reason = plugins.check_backend(specs[b.name])
            if reason:
                usable, note = False, reason
                problems.append(f"backend {b.name!r} (plugin {b.plugin}) {reason}")
        usable_here[b.name] = "" if usable else note
        rows.append((b.name, "yes" if usable else "no", b.plugin, note))
    widths = [
        max(len(r[i]) for r in rows + [("backend", "usable", "plugin", "")]) for i in range(3)
    ]
    print(f"{'backend':<{widths[0]}}  {'usable':<{widths[1]}}  {'plugin':<{widths[2]}}  notes")
    for name, shown, plugin, note in rows:
        print(f"{name:<{widths[0]}}  {shown:<{widths[1]}}  {plugin:<{widths[2]}}  {note}")
    if not rows:
        print(
            "(no backends discovered: from a polykeras checkout, pip install -e . installs "
            "the backend plugins)"
        )
    for err in plugins.plugin_errors():
        print(f"plugin {err.plugin} failed: {err.error}")
        problems.append(f"plugin {err.plugin} failed to load: {err.error}")
    if active is None:
        print(f"\nselected: ? ({source})")
    else:
        print(f"\nselected: {active} (from {source})")
        base = active.partition(":")[0].strip()
        unknown = plugins.unknown_backend_message(active, source, with_errors=False)
        if unknown:
            problems.append(unknown)
        elif usable_here.get(base):
            problems.append(
                f"selected backend {active!r} (from {source}) is not usable "
                f"here: {usable_here[base]}"
            )
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=_prog())
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list every discovered backend and whether it is usable")
    demo = sub.add_parser("demo", help="train the guide's models on handwritten digits")
    demo.add_argument(
        "--backend",
        default=None,
        metavar="NAME",
        help="backend to run on (default: the selected one, see `backends`)",
    )
    demo.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="epochs for each model (default: 15 for the perceptron, 12 for "
        "the shared vision model; 1 or 2 for a quick look)",
    )
    demo.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder for the saved model files, kept afterwards (default: a "
        "temporary folder, removed at the end)",
    )
    conf = sub.add_parser("conformance", help="run documents' code blocks on backends")
    conf.add_argument("paths", nargs="+")
    conf.add_argument("--backend", default=None, help="a backend name, or 'all'")
    conf.add_argument("--report", default=None, help="folder for the report files")
    args = parser.parse_args(argv)
    if args.command == "backends":
        return _cmd_backends(args)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(args)
    if args.command == "conformance":
        from .conformance.cli import main as conf_main

        return conf_main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
