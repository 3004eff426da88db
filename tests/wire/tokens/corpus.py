# ruff: noqa: RUF001 - full-width punctuation is what the corpus is about
"""The adversarial corpus the prompt bound is measured on (corpus.json, beside this file).

Each text is built to cost many tokens per byte, or to defeat a characters-per-token
estimate, for some tokenizer: one-letter words, lone digits and punctuation, CJK, rare
ideographs, code, base64, hex, emoji (sequences, flags, skin tones), long numbers,
whitespace runs, mixed scripts, combining marks, characters that normalisation lengthens,
special-token strings, control and invisible characters, private-use characters, random
code points; and ordinary prose and code as the baseline. The texts are generated once
from a fixed seed and stored, so the test data does not depend on this file's code:

    python -m tests.wire.tokens.corpus   # rewrites corpus.json
"""

from __future__ import annotations

import base64
import json
import random
import unicodedata
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus.json"
SIZE = 2_000  # characters per generated text, about


def load() -> dict[str, str]:
    texts: dict[str, str] = json.loads(CORPUS.read_text(encoding="utf-8"))
    return texts


PROSE = (
    "The committee met on Tuesday to review the quarterly figures. Revenue grew by a modest "
    "margin, while costs rose faster than expected, mostly because of shipping delays and "
    "the price of components. The chair asked each team to propose two savings before the "
    "next meeting, and to explain how they would measure the effect over the coming months. "
)
CHINESE = (
    "人工智能正在改变我们的生活方式。从智能手机到自动驾驶汽车，机器学习算法已经深入到日常"
    "生活的方方面面。然而，这项技术也带来了新的挑战，例如数据隐私、算法偏见以及就业结构的变化。"
    "专家们认为，我们需要在鼓励创新的同时，建立合理的监管框架，确保技术发展造福全人类。"
)
JAPANESE = (
    "東京は日本の首都であり、世界有数の大都市です。ｶﾀｶﾅのﾃｷｽﾄも混ざっています。"
    "ひらがな、カタカナ、漢字が一つの文の中で使われることが普通です。"
)
KOREAN = "대한민국의 수도는 서울입니다. 한국어는 한글이라는 고유한 문자를 사용합니다. "
CODE = """def settle(self, call: Call, body: dict[str, Any] | None) -> None:
    if call.key is None or self.sink is None:
        return
    usage = call.usage
    if call.status == 200 and usage.prompt_tokens == 0 and body is not None:
        usage.prompt_tokens = call.dialect.estimate_prompt_tokens(body)
        usage.estimated = True
    for i, (k, v) in enumerate(sorted(self.limits.items())):
        print(f"{i:>4} {k!r:<20} => {v:#x}")  # {{}}[]()<>!=&&||
"""
SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyz",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "greek": "αβγδεζηθικλμνξοπρστυφχψω",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשת",
    "devanagari": "अआइईउऊएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह",
    "thai": "กขฃคฅฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮ",
    "georgian": "აბგდევზთიკლმნოპჟრსტუფქღყშჩცძწჭხჯჰ",
    "armenian": "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ",
    "ethiopic": "ሀሁሂሃሄህሆለሉሊላሌልሎሐሑሒሓሔሕሖመሙሚማሜምሞ",
    "hangul": "가나다라마바사아자차카타파하",
    "han": "的一是不了人我在有他这中大来上个们到说和",
}


def _words(rng: random.Random, alphabet: str, length: int, words: int) -> str:
    return " ".join("".join(rng.choice(alphabet) for _ in range(length)) for _ in range(words))


def _fill(text: str, size: int = SIZE) -> str:
    return (text * (size // max(1, len(text)) + 1))[:size]


def _assigned(rng: random.Random, low: int, high: int, count: int) -> str:
    out: list[str] = []
    while len(out) < count:
        c = chr(rng.randrange(low, high))
        if unicodedata.category(c) not in ("Cn", "Cs", "Co"):
            out.append(c)
    return "".join(out)


def build() -> dict[str, str]:
    rng = random.Random(15)
    emoji = [chr(c) for c in range(0x1F300, 0x1F5FF)] + [chr(c) for c in range(0x1F600, 0x1F64F)]
    zwj_families = [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
        "\U0001f3f3\ufe0f\u200d\U0001f308",
        "\U0001f9d1\U0001f3fd\u200d\U0001f4bb",
        "\U0001f469\U0001f3ff\u200d\u2764\ufe0f\u200d\U0001f48b\u200d\U0001f468\U0001f3fb",
    ]
    flags = "".join(
        chr(0x1F1E6 + rng.randrange(26)) + chr(0x1F1E6 + rng.randrange(26)) for _ in range(500)
    )
    marks = [chr(c) for c in range(0x0300, 0x0370)]
    texts = {
        "english prose": _fill(PROSE),
        "python code": _fill(CODE),
        "one-letter words": _words(rng, SCRIPTS["latin"], 1, SIZE // 2),
        "the same letter, spaced": " ".join("a" * (SIZE // 2)),
        "one letter, repeated": "a" * SIZE,
        "lone punctuation": " ".join(rng.choice(".,;:!?-'\"()[]{}") for _ in range(SIZE // 2)),
        "lone digits": " ".join(rng.choice("0123456789") for _ in range(SIZE // 2)),
        "long numbers": " ".join(str(rng.randrange(10**30, 10**40)) for _ in range(SIZE // 40)),
        "digits, unbroken": "".join(rng.choice("0123456789") for _ in range(SIZE)),
        "one-letter words, Cyrillic": _words(rng, SCRIPTS["cyrillic"], 1, SIZE // 2),
        "letters between ideographs": "".join(
            rng.choice("xyz") + rng.choice(SCRIPTS["han"]) for _ in range(SIZE // 2)
        ),
        "Chinese prose": _fill(CHINESE),
        "Japanese, with half-width katakana": _fill(JAPANESE),
        "Korean prose": _fill(KOREAN),
        "random common ideographs": _assigned(rng, 0x4E00, 0x9FFF, SIZE),
        "rare ideographs (extension B)": _assigned(rng, 0x20000, 0x2A6DF, SIZE),
        "base64": base64.b64encode(rng.randbytes(SIZE * 3 // 4)).decode(),
        "hex": rng.randbytes(SIZE // 2).hex(),
        "UUIDs": " ".join(
            "-".join(rng.randbytes(n).hex() for n in (4, 2, 2, 2, 6)) for _ in range(SIZE // 37)
        ),
        "minified code": "".join(
            rng.choice(["a", "b", "_", "$", "=", ";", "(", ")", "{", "}", ".", ",", "!", "0"])
            for _ in range(SIZE)
        ),
        "emoji": "".join(rng.choice(emoji) for _ in range(SIZE // 2)),
        "emoji, spaced": " ".join(rng.choice(emoji) for _ in range(SIZE // 2)),
        "emoji sequences (ZWJ, skin tones)": "".join(
            rng.choice(zwj_families) for _ in range(SIZE // 10)
        ),
        "flags": flags,
        "spaces": " " * SIZE,
        "whitespace runs, mixed": "".join(
            rng.choice([" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2003", "x"])
            for _ in range(SIZE)
        ),
        "newlines": "\n" * SIZE,
        "mixed scripts, one word each": " ".join(
            "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 4)))
            for alphabet in (rng.choice(list(SCRIPTS.values())) for _ in range(SIZE // 3))
        ),
        "mixed scripts, no spaces": "".join(
            rng.choice(rng.choice(list(SCRIPTS.values()))) for _ in range(SIZE)
        ),
        "Arabic with diacritics": "".join(
            rng.choice(SCRIPTS["arabic"])
            + rng.choice("\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652")
            for _ in range(SIZE // 2)
        ),
        "Devanagari and Thai": _words(rng, SCRIPTS["devanagari"] + SCRIPTS["thai"], 3, SIZE // 4),
        "combining marks (zalgo)": "".join(
            rng.choice(SCRIPTS["latin"]) + "".join(rng.choice(marks) for _ in range(6))
            for _ in range(SIZE // 7)
        ),
        "decomposed accents (NFD)": unicodedata.normalize(
            "NFD", _fill("Xin chào thế giới, đây là bài kiểm tra tiếng Việt. Ærøskøbing café. ")
        ),
        "precomposed letters, then marks": "".join(
            rng.choice("àáâãäåèéêëìíîïòóôõöùúûüỳýÿ")
            + rng.choice("\u0323\u0324\u0325\u0326\u0327\u0328")
            for _ in range(SIZE // 2)
        ),
        "ligatures NFKC lengthens": "".join(
            rng.choice(
                [
                    "\ufdfa",
                    "\ufdfb",
                    "\u3307",
                    "\u3300",
                    "\u337b",
                    "\u2474",
                    "\u2169",
                    "\ufb03",
                    "\u01c6",
                ]
            )
            for _ in range(SIZE // 2)
        ),
        "U+FDFA, repeated": "\ufdfa" * (SIZE // 2),
        "full-width forms": "".join(chr(0xFF01 + rng.randrange(94)) for _ in range(SIZE)),
        "math alphanumerics": "".join(chr(0x1D400 + rng.randrange(1000)) for _ in range(SIZE // 2)),
        "special-token strings": _fill(
            "<|endoftext|><|im_start|>user\n<|im_end|><s>[INST]</s>[/INST]<|begin_of_text|>"
            "<|eot_id|><｜begin▁of▁sentence｜>\n\nHuman: \n\nAssistant:"
        ),
        "control and invisible characters": "".join(
            rng.choice(
                [chr(c) for c in range(1, 32)]
                + [
                    "\u200b",
                    "\u200c",
                    "\u200d",
                    "\u2060",
                    "\ufeff",
                    "\u202e",
                    "\u2066",
                    "\u00ad",
                    "\x7f",
                ]
            )
            for _ in range(SIZE)
        ),
        "private use": "".join(chr(0xE000 + rng.randrange(6400)) for _ in range(SIZE // 2)),
        "random BMP code points": _assigned(rng, 0x00A0, 0xFFFF, SIZE),
        "random astral code points": _assigned(rng, 0x10000, 0x3134F, SIZE // 2),
        "URLs and paths": " ".join(
            f"https://{_words(rng, SCRIPTS['latin'], 6, 1)}.example/{rng.randbytes(4).hex()}"
            f"/a_b-c.{rng.choice(['py', 'json', 'png'])}?q={rng.randrange(10**6)}&x=%2F%E4%B8%AD"
            for _ in range(SIZE // 60)
        ),
    }
    return texts


def write() -> None:
    CORPUS.write_text(json.dumps(build(), ensure_ascii=True, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"{CORPUS}: {len(load())} texts")
