"""One rule for every name a person gives something: no control characters.

Names travel into places where a line break means something: an email
subject (a team name with CR/LF made every invitation fail with
``BadHeaderError``), HTTP headers, log lines, CSV exports. Forms and API
serializers both use ``no_control_characters``, so a page and an API call
refuse the same input with the same words.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

# C0 controls (tab, LF, CR, NUL...), DEL, C1 controls (NEL...) and the Unicode line and
# paragraph separators: everything str.splitlines() would break a line at, and more.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@deconstructible
class NoControlCharacters:
    message = _("Use a single line of text, without line breaks, tabs or control characters.")
    code = "control_characters"

    def __call__(self, value: Any) -> None:
        if isinstance(value, str) and CONTROL_CHARACTERS.search(value):
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoControlCharacters)

    def __hash__(self) -> int:
        return hash(NoControlCharacters)


no_control_characters = NoControlCharacters()


def single_line(text: str) -> str:
    """``text`` with every control character replaced by a space, for places (an
    email subject) that must not fail on a name stored before the rule existed."""
    return " ".join(CONTROL_CHARACTERS.sub(" ", text).split())
