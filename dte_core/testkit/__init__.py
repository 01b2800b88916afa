"""Test material generators shipped with the library: test SII keys and CAFs, certificates.

For tests, demos and SII simulators only; nothing here is trusted unless the caller trusts it
explicitly (``SiiKeyring.with_trusted_key``).
"""
