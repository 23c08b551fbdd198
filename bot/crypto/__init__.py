"""Keys, sealing, signatures and the file formats of backups and sealed exports.

The house of the organisation's cryptography (see docs/THREAT_MODEL.md): `keyring` loads the
keys and seals cases and drafts, `agekeys` reads and writes key files (age's format, and the
older base64 one), `signing` makes and checks the detached Ed25519 signatures of backups and
sealed exports, `agefile` writes and reads the age files themselves, `sealing` says to whom and
signed by what, `draftkey` decides where the server's draft key may live, and `sealedfile` reads
(and still writes, for tests) the older sealed-file format. `bot.services.crypto` and
`bot.services.sealedfile` are kept as aliases of `keyring` and `sealedfile`.
"""
