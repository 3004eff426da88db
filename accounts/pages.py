"""What the create and edit pages of every app share.

A page's POST goes the same way everywhere: when its forms are valid (``submitted``) the view
calls the action, says so and redirects; when the action refuses (``TeamRuleError``, or the
app's own refusal), ``refusals_on`` puts the message on the form and the view shows the page
again::

    if submitted(request, form):
        with refusals_on(form, "name"):
            thing = actions.create_thing(membership, **form.cleaned_data, request=request)
            messages.success(request, ...)
            return redirect(...)
    return render(...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from django import forms
from django.http import HttpRequest

from accounts.actions import TeamRuleError


class Validated(Protocol):
    def is_valid(self) -> bool: ...


def submitted(request: HttpRequest, *forms: Validated) -> bool:
    """A POST whose forms (and formsets) are all valid. Every one is validated, so that each
    shows its own errors."""
    if request.method != "POST":
        return False
    valid = [form.is_valid() for form in forms]
    return all(valid)


@contextlib.contextmanager
def refusals_on(
    form: forms.BaseForm,
    field: str | None = None,
    refusal: type[Exception] | tuple[type[Exception], ...] = TeamRuleError,
) -> Iterator[None]:
    """A refusal raised in the block becomes an error on ``field`` (None: the whole form) and
    ends the block; the view goes on to show the form again."""
    try:
        yield
    except refusal as exc:
        form.add_error(field, str(exc))


def relay_base_url(request: HttpRequest) -> str:
    """The /v1 base URL clients use, as this request reached Baton."""
    return request.build_absolute_uri("/v1").rstrip("/")
