"""``python -m backprop_cli`` runs the ``backprop`` command."""

from .cli import main

main()
