"""``python -m numpy_vae ...`` runs the ``numpy-vae`` command (numpy_vae/cli.py)."""

from numpy_vae.cli import main

raise SystemExit(main())
