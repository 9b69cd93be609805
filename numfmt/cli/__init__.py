"""The command line (``python -m numfmt``) and its demo.

May import: everything below it. Private: only ``numfmt`` and ``numfmt.testing`` are public.
"""
