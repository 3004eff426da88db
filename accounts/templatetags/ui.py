"""The page layout's building blocks: a card and a table that a page fills.

    {% load ui %}
    {% card id="keys-title" title=_("API keys") count=keys|length %}
      {% table test="keys-table" class="table--stack" %}
        <th scope="col">{% translate "Name" %}</th>
      {% rows %}
        {% for key in keys %}<tr data-test="key-row"><td>{{ key.name }}</td></tr>{% endfor %}
      {% endtable %}
    {% endcard %}

``card`` and ``table`` render their partial (templates/partials/card.html, table.html) with
only their own arguments and the parts the page wrote (rendered in the page's context), so
the markup lives in the partials and a page says only what is its own. ``capture`` keeps
what a part of a template printed (a block, for instance) in a variable, so a wrapper can
be left out when there is nothing in it. templates/README.md shows a whole page.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, Node, NodeList, Parser, Token, token_kwargs
from django.template.context import Context
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _printed(nodelist: NodeList, context: Context) -> SafeString:
    """What a part of the page prints, without the whitespace around it. Its own
    variables ({% translate ... as x %}) stay inside it."""
    with context.push():
        output = nodelist.render(context)
    # Template output: already escaped where it had to be.
    return mark_safe(output.strip())  # noqa: S308


class PartialNode(Node):
    """Renders a partial with keyword arguments and the parts the page wrote."""

    def __init__(
        self, template_name: str, arguments: dict[str, FilterExpression], parts: dict[str, NodeList]
    ) -> None:
        self.template_name = template_name
        self.arguments = arguments
        self.parts = parts

    def get_nodes_by_type(self, nodetype: type[Node]) -> list[Node]:
        # The parts may hold {% block %}s: template inheritance finds them here.
        nodes: list[Node] = [self] if isinstance(self, nodetype) else []
        for nodelist in self.parts.values():
            nodes.extend(nodelist.get_nodes_by_type(nodetype))
        return nodes

    def render(self, context: Context) -> str:
        values: dict[str, Any] = {
            name: value.resolve(context) for name, value in self.arguments.items()
        }
        for name, nodelist in self.parts.items():
            values[name] = _printed(nodelist, context)
        assert context.template is not None
        partial = context.template.engine.get_template(self.template_name)
        return partial.render(context.new(values))


def _arguments(parser: Parser, token: Token) -> dict[str, FilterExpression]:
    bits = token.split_contents()
    tag, rest = bits[0], bits[1:]
    arguments = token_kwargs(rest, parser)
    if rest:
        raise template.TemplateSyntaxError(
            f"{{% {tag} %}} takes name=value arguments only, not {rest[0]!r}"
        )
    return arguments


@register.tag
def card(parser: Parser, token: Token) -> PartialNode:
    """{% card id=... title=... count=... sub=... class=... element=... test=... label=...
    head_class=... %} [{% actions %}next to the title{% endactions %}] body {% endcard %}"""
    arguments = _arguments(parser, token)
    body = parser.parse(("actions", "endcard"))
    actions = NodeList()
    if parser.next_token().contents == "actions":
        actions = parser.parse(("endactions",))
        parser.delete_first_token()
        body.extend(parser.parse(("endcard",)))
        parser.delete_first_token()
    return PartialNode("partials/card.html", arguments, {"actions": actions, "body": body})


@register.tag
def table(parser: Parser, token: Token) -> PartialNode:
    """{% table class=... test=... %} header cells {% rows %} rows {% endtable %}"""
    arguments = _arguments(parser, token)
    head = parser.parse(("rows",))
    parser.delete_first_token()
    rows = parser.parse(("endtable",))
    parser.delete_first_token()
    return PartialNode("partials/table.html", arguments, {"head": head, "rows": rows})


class CaptureNode(Node):
    def __init__(self, nodelist: NodeList, name: str) -> None:
        self.nodelist = nodelist
        self.name = name

    def render(self, context: Context) -> str:
        context[self.name] = _printed(self.nodelist, context)
        return ""


@register.tag
def capture(parser: Parser, token: Token) -> CaptureNode:
    """{% capture as name %}...{% endcapture %}: keeps what it prints, stripped, in name."""
    bits = token.split_contents()
    if len(bits) != 3 or bits[1] != "as":
        raise template.TemplateSyntaxError("usage: {% capture as name %}...{% endcapture %}")
    nodelist = parser.parse(("endcapture",))
    parser.delete_first_token()
    return CaptureNode(nodelist, bits[2])
