"""Layer 1, config: from a YAML file to objects (schema, YAML with line numbers, layer specs, --set, builder).

May import the library (``nn``, ``optim``, ``data``) and ``errors``; never ``engine``, ``diagnostics`` or ``cli``.
"""
