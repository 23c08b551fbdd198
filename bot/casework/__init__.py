"""Case work: what staff do with cases once submitted.

Per-person workflow statuses and the rule that derives a case's status from its persons',
names in any script made comparable (transliteration), the in-memory search index, and
duplicate matching. Pure code and in-memory structures; storage stays in bot/storage/.
"""
