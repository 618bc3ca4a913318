"""DKIM keys of the hosted domains: generated here, published as TXT records, read by the
data plane's signer (OpenDKIM) through the contract view `dataplane_v1_dkim_signing_keys`."""
