"""The Postmeister milters: the sender milter (header From vs login, on submission) and the
antispam milter (rspamd's verdict and each recipient's policy, on the SMTP port).

- `protocol`: the Sendmail milter codec and the per-connection conversation, written once;
- `sender`, `antispam`: the two policies, pure decisions plus a `Milter` each;
- `lookups`: the one database layer (the contract's statements on SQLite or PostgreSQL);
- `__main__`: the entry point, `python -m postmeister.dataplane.milter --config milter.json`.

Dependencies run one way: `__main__` → `sender`, `antispam`, `lookups` → `protocol`,
`postmeister.canonical`, `postmeister.dataplane.contract`. Only the standard library, `idna`
and the database driver are needed. This file imports nothing, so that running the package
with `-m` loads `__main__` once.
"""
