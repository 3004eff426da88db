"""Azure OpenAI: the OpenAI wire format behind Azure's URLs and ``api-key`` header.

Two URL schemes (https://learn.microsoft.com/azure/ai-foundry/openai/reference and
https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle):

- classic: ``{base}/openai/deployments/{deployment}/{path}?api-version={v}``,
  where the deployment name selects the model. Operators map model names to
  deployments in ``extras["deployments"]``; unmapped names follow one-api's
  convention of removing dots (``gpt-3.5-turbo`` -> ``gpt-35-turbo``), which
  is how most Azure deployments are named;
- v1 (``api_version == "v1"``, since August 2025): ``{base}/openai/v1/{path}``
  with the deployment name as the body's ``model``.

Bodies, responses, streams and errors are OpenAI-shaped, so everything else is
the generic adapter's, including dropping Azure's empty-``choices`` first
stream chunk that only carries ``prompt_filter_results``.
"""

from __future__ import annotations

from urllib.parse import quote

from wire.base import Endpoint, Upstream, add_extra_headers

from .openai_compat import PATHS, OpenAICompatAdapter
from .quirks import Quirks

DEFAULT_API_VERSION = "2024-10-21"  # latest GA dated version


class AzureAdapter(OpenAICompatAdapter):
    family = "azure"

    def url(self, endpoint: Endpoint, upstream: Upstream) -> str:
        base = upstream.base_url.rstrip("/")
        api_version = _api_version(upstream)
        if api_version == "v1":
            return f"{base}/openai/v1{PATHS[endpoint]}"
        if endpoint == "models":
            # Models belong to the resource, not to a deployment.
            return f"{base}/openai/models?api-version={quote(api_version)}"
        deployment = quote(deployment_name(upstream), safe="")
        return (
            f"{base}/openai/deployments/{deployment}{PATHS[endpoint]}"
            f"?api-version={quote(api_version)}"
        )

    def body_model(self, upstream: Upstream, quirks: Quirks) -> str:
        # v1 routes on the body's model, which must name the deployment; the
        # classic scheme ignores it, and the deployment is the truthful value.
        return deployment_name(upstream)

    def headers(self, upstream: Upstream) -> dict[str, str]:
        headers = {"api-key": upstream.api_key}
        add_extra_headers(headers, upstream.extras)
        return headers


def deployment_name(upstream: Upstream) -> str:
    deployments = upstream.extras.get("deployments") or {}
    mapped = deployments.get(upstream.model)
    return str(mapped) if mapped else upstream.model.replace(".", "")


def _api_version(upstream: Upstream) -> str:
    return str(upstream.extras.get("api_version") or DEFAULT_API_VERSION)
