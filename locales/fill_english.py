"""English is the source language: its catalog's translations are the msgids themselves."""

from pathlib import Path

from babel.messages.pofile import read_po, write_po

path = Path(__file__).with_name("en") / "LC_MESSAGES" / "messages.po"
with path.open("rb") as f:
    catalog = read_po(f, locale="en")
for message in catalog:
    if message.id:
        message.string = message.id
        message.flags.discard("fuzzy")
with path.open("wb") as f:
    write_po(f, catalog, width=0)
