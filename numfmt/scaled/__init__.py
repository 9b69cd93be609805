"""The scaled integer family: ``ScaledIntFormat``, its quantizer kernel, driver, reference.

May import: ``numfmt.core``, ``numfmt.float`` and the element families.
Private: only ``numfmt`` and ``numfmt.testing`` are public.
"""
