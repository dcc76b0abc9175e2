"""Prompts for the embedded digit models: a prompt that names one digit ("7", "seven", "a handwritten 7") is that
class, so an unmodified OpenAI client (which must send a prompt) can use them; anything else is refused."""

from __future__ import annotations

import re

from .errors import ApiError, short

__all__ = [
    "DIGIT_WORDS", "UNDERSTOOD", "digit_of"
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
UNDERSTOOD = ("a prompt naming one digit, as a numeral or a word: '7', 'seven', 'a handwritten 7'; or "
              "`class_labels` (digits 0..9)")


def digit_of(prompt: str, model_name: str) -> int:
    """The one digit `prompt` names; a 400 listing what is understood when it names none or several."""
    words = re.findall(r"[a-z]+|[0-9]+", prompt.lower())
    found = {DIGIT_WORDS.index(word) for word in words if word in DIGIT_WORDS}
    found |= {int(word) for word in words if word.isdigit() and len(word) == 1}
    if len(found) != 1:
        named = "no digit" if not found else f"several digits {sorted(found)}"
        raise ApiError(400, f"`prompt`: `{model_name}` draws a digit and {short(prompt)} names {named}; "
                            f"it understands {UNDERSTOOD}.", param="prompt", code="unsupported_prompt")
    return found.pop()
