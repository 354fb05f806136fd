"""Layer 3, diagnostics: tools that look inside backpropagation (gradcheck, per-layer timing), one
implementation each, shared by the tests and the CLI. May import the library, ``config``, ``engine``, ``errors``.
"""
