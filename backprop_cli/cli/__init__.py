"""Layer 4, cli: the ``backprop`` command, a thin Typer layer (``app``) that parses, calls one function of a
lower layer and renders its result with rich (``render``). May import every layer; nothing imports it.
"""
