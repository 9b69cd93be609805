"""The scaled integer family: ``ScaledIntFormat``, its quantizer kernel, driver, exact reference.

May import: ``numfmt.core``, ``numfmt.float`` and ``numfmt.block`` (integer
elements, scale bits, the runner). Private: only ``numfmt`` and
``numfmt.testing`` are public.
"""
