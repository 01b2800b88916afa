"""The SII's web services: a client (``client``, ``boleta``, ``reclamo``) and a local simulator
(``simulator``) speaking the same wire formats. Codes live in ``codes``, errors in ``errors``.

Import the submodules directly; this package imports nothing on its own.
"""
