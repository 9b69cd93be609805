"""The command line (``python -m numfmt``: ``main``, ``families``, ``exact_text``) and its demo.

May import: every layer below it and the public face ``numfmt``. Private:
only ``numfmt`` and ``numfmt.testing`` are public.
"""
