"""Command line: ``python -m polykeras backends | demo | conformance``."""

from __future__ import annotations

import argparse
import sys


def _cmd_backends(args: argparse.Namespace) -> int:
    from . import backends, config, plugins

    try:
        active, source = config.requested_backend()
    except config.ConfigError as exc:
        active, source = "?", str(exc)
    rows = [(b.name, "yes" if b.usable else "no", b.plugin, b.reason or b.description)
            for b in backends()]
    widths = [max(len(r[i]) for r in rows + [("backend", "usable", "plugin", "")])
              for i in range(3)]
    print(f"{'backend':<{widths[0]}}  {'usable':<{widths[1]}}  {'plugin':<{widths[2]}}  notes")
    for name, usable, plugin, note in rows:
        print(f"{name:<{widths[0]}}  {usable:<{widths[1]}}  {plugin:<{widths[2]}}  {note}")
    for err in plugins.plugin_errors():
        print(f"plugin {err.plugin} failed: {err.error}")
    print(f"\nselected: {active} (from {source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m polykeras")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list every discovered backend and whether it is usable")
    demo = sub.add_parser("demo", help="train the guide's models on handwritten digits")
    demo.add_argument("--backend", default=None, help="backend to run on (default: selected)")
    demo.add_argument("--epochs", type=int, default=None)
    demo.add_argument("--out", default=None, help="folder for the saved model files")
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
