"""Azure OpenAI: deployment URLs, the v1 scheme, api-key auth, its extra stream chunk."""

from __future__ import annotations

from wire.providers import Usage, get_adapter

from .helpers import body_of, fixture, sse_events, translate, upstream

AZURE = get_adapter("azure")


def test_classic_url_derives_the_deployment_by_removing_dots() -> None:
    target = upstream(
        "azure", "azure", base_url="https://acme.openai.azure.com", model="gpt-3.5-turbo"
    )
    request = AZURE.build_request("chat", {"model": "x", "messages": []}, target, stream=False)

    assert request.url == (
        "https://acme.openai.azure.com/openai/deployments/gpt-35-turbo/chat/completions"
        "?api-version=2024-10-21"
    )


def test_classic_url_uses_the_mapped_deployment_and_version() -> None:
    target = upstream(
        "azure",
        "azure",
        base_url="https://acme.openai.azure.com/",
        api_key="azure-key",
        model="gpt-4o",
        extras={"api_version": "2025-01-01-preview", "deployments": {"gpt-4o": "prod-4o"}},
    )

    chat = AZURE.build_request("chat", {"messages": []}, target, stream=True)
    embeddings = AZURE.build_request("embeddings", {"input": "a"}, target, stream=False)

    assert chat.url == (
        "https://acme.openai.azure.com/openai/deployments/prod-4o/chat/completions"
        "?api-version=2025-01-01-preview"
    )
    assert embeddings.url == (
        "https://acme.openai.azure.com/openai/deployments/prod-4o/embeddings"
        "?api-version=2025-01-01-preview"
    )
    assert chat.headers == {"api-key": "azure-key", "Content-Type": "application/json"}
    assert body_of(chat.body)["stream_options"] == {"include_usage": True}


def test_v1_url_puts_the_deployment_in_the_body() -> None:
    target = upstream(
        "azure",
        "azure",
        base_url="https://acme.openai.azure.com",
        api_key="azure-key",
        model="gpt-4o",
        extras={"api_version": "v1", "deployments": {"gpt-4o": "prod-4o"}},
    )

    request = AZURE.build_request("chat", {"model": "alias", "messages": []}, target, stream=False)

    assert request.url == "https://acme.openai.azure.com/openai/v1/chat/completions"
    assert body_of(request.body)["model"] == "prod-4o"
    assert "Authorization" not in request.headers
    assert request.headers["api-key"] == "azure-key"


def test_models_are_listed_per_resource() -> None:
    classic = upstream("azure", "azure", base_url="https://acme.openai.azure.com")
    v1 = upstream(
        "azure", "azure", base_url="https://acme.openai.azure.com", extras={"api_version": "v1"}
    )

    assert AZURE.build_request("models", {}, classic, stream=False).url == (
        "https://acme.openai.azure.com/openai/models?api-version=2024-10-21"
    )
    assert AZURE.build_request("models", {}, v1, stream=False).url == (
        "https://acme.openai.azure.com/openai/v1/models"
    )


def test_the_empty_choices_prompt_filter_chunk_is_dropped() -> None:
    data = fixture("azure_stream.sse")
    events = sse_events(data)
    target = upstream("azure", "azure")
    translator = AZURE.stream_translator("chat", target, client_wants_usage=True)

    out = translate(translator, [data])

    assert out == b"".join(events[1:])
    assert translator.usage == Usage(prompt_tokens=9, completion_tokens=1)
