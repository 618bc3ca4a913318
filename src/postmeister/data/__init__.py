"""Data files shipped inside the package.

`common-passwords-sha1.txt`: sorted SHA-1 hashes of common leaked passwords; its origin,
licence and how to regenerate it are described in `postmeister.domain.passwords.leaked`.
"""
