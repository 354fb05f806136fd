"""``python -m backprop_cli`` runs the ``backprop`` command."""

from .cli.app import main

main()
