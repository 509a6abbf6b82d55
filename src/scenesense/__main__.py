"""``python -m scenesense`` -> the CLI."""

from scenesense.cli import main

raise SystemExit(main())
