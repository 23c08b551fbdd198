"""The wheel is complete: built, installed into a fresh virtualenv outside the checkout, it
answers a Russian user in Russian and a Kazakh user in Kazakh (ecosystem review: a wheel
without catalogs answered everyone in English).

    python tests/wheel_check.py          # what `make wheel-check` and .ci/run run

Steps: build the wheel from this checkout (no dependencies, no build isolation: setuptools and
babel come from the locked dev environment); make a virtualenv in a temporary folder; install
the hash-pinned runtime lock (requirements.lock) and the wheel into it; then, from that
folder and with no path into the checkout, start the sandbox emulator and the bot, have a
Russian and a Kazakh user press /start and choose their language, and compare what they see
with the checkout's catalogs. Also: the console script answers --version, and the wheel holds
the compiled catalogs, the questionnaire, the migrations and the licence. Prints the wheel's
contents and the answers; exits non-zero on any failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run by the fresh virtualenv's interpreter, outside the checkout.
PROBE = r'''
import asyncio, json, sys, tempfile
from pathlib import Path

import bot
from bot.config import Settings
from bot.i18n import LANGUAGE_NAMES, LOCALES_DIR
from bot.runner import run_bot
from bot.sandbox.emulator import Emulator


async def main() -> None:
    emulator = Emulator()
    await emulator.start()
    out = {"bot": bot.__file__, "locales": str(LOCALES_DIR)}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(token=emulator.token, api_base_url=emulator.base_url,
                            data_dir=Path(tmp) / "data")
        stop = asyncio.Event()
        task = asyncio.create_task(run_bot(settings, webhook=False, stop=stop))
        try:
            for user_id, lang in ((101, "ru"), (102, "kk")):
                user = emulator.user(user_id, language_code=lang)
                await user.send_text("/start", timeout=60)
                await user.press(LANGUAGE_NAMES[lang], timeout=60)
                out[lang] = user.last.plain
        finally:
            stop.set()
            out["exit"] = await task
            await emulator.stop()
    print(json.dumps(out, ensure_ascii=False))


asyncio.run(main())
'''

REQUIRED = ("bot/locales/kk/LC_MESSAGES/messages.mo", "bot/locales/ru/LC_MESSAGES/messages.mo",
            "bot/locales/kk/LC_MESSAGES/messages.po", "bot/form/questionnaire.toml",
            "bot/storage/migrations/0001_initial.sql", "bot/__main__.py")


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def expected(lang: str) -> str:
    """The first line of the consent notice in `lang`, from the checkout's own catalogs."""
    sys.path.insert(0, str(ROOT))
    from bot.form.model import load_form
    from bot.i18n import translator

    text = translator(lang)._(load_form().question("consent", "consent_store").prompt)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).split("\n")[0]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wheel-check-") as tmp_name:
        tmp = Path(tmp_name)
        run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
            "--quiet", "-w", tmp / "dist", cwd=ROOT)
        wheel = next((tmp / "dist").glob("atazhurt_bot-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
        print(f"{wheel.name}: {len(names)} files")
        for name in names:
            print(f"  {name}")
        missing = [n for n in REQUIRED if n not in names]
        if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
            missing.append("LICENSE")
        if not any(n.endswith(".dist-info/entry_points.txt") for n in names):
            missing.append("entry_points.txt")
        if missing:
            raise SystemExit(f"the wheel lacks {missing}")

        venv = tmp / "venv"
        run(sys.executable, "-m", "venv", venv)
        py = venv / "bin" / "python"
        run(py, "-m", "pip", "install", "--quiet", "--require-hashes", "-r",
            ROOT / "requirements.lock")
        run(py, "-m", "pip", "install", "--quiet", "--no-deps", wheel)

        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BOT_", "PYTHON", "VIRTUAL_ENV"))}
        print("atazhurt-bot --version:", run(venv / "bin" / "atazhurt-bot", "--version",
                                            cwd=tmp, env=env).strip())
        answer = json.loads(run(py, "-c", PROBE, cwd=tmp, env=env).strip().splitlines()[-1])
        print(f"bot imported from {answer['bot']}; catalogs in {answer['locales']}")
        problems = []
        if not answer["bot"].startswith(str(venv)):
            problems.append("the bot was not imported from the fresh virtualenv")
        for lang in ("ru", "kk"):
            want = expected(lang)
            print(f"{lang} user sees: {answer[lang].splitlines()[0]!r}")
            if want not in answer[lang]:
                problems.append(f"{lang}: expected {want!r}")
        if expected("ru") == expected("en") or answer["ru"] == answer["kk"]:
            problems.append("the catalogs do not differ")
        if answer["exit"] != 0:
            problems.append(f"the bot exited with {answer['exit']}")
        if problems:
            raise SystemExit("wheel check FAILED: " + "; ".join(problems))
    print("wheel check: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
