"""Keys, sealing, signatures and the file formats of backups and sealed exports.

The house of the organisation's cryptography (see /docs/THREAT_MODEL.md): `agekeys` reads and
writes key files (age's format, and the older base64 one), `signing` makes and checks the
detached Ed25519 signatures of backups and sealed exports, `agefile` writes and reads the age
files themselves, and `draftkey` decides where the server's draft key may live.
"""
