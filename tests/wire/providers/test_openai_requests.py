"""Building requests for OpenAI-compatible providers, quirks included."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from wire.providers import get_adapter

from .helpers import body_of, upstream

ADAPTER = get_adapter("openai")


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "alias", "messages": [{"role": "user", "content": "Hi"}], **fields}


def test_chat_request_targets_the_upstream_model_with_bearer_auth() -> None:
    request = ADAPTER.build_request("chat", _chat(temperature=1.5), upstream(), stream=False)

    assert request.method == "POST"
    assert request.url == "https://api.example.com/v1/chat/completions"
    assert request.headers == {
        "Authorization": "Bearer sk-test",
        "Content-Type": "application/json",
    }
    assert body_of(request.body) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 1.5,
    }


def test_each_endpoint_has_its_path_and_models_is_a_get() -> None:
    target = upstream(base_url="http://localhost:11434/v1/")
    assert ADAPTER.build_request("completions", {"prompt": "a"}, target, stream=False).url == (
        "http://localhost:11434/v1/completions"
    )
    assert ADAPTER.build_request("embeddings", {"input": "a"}, target, stream=False).url == (
        "http://localhost:11434/v1/embeddings"
    )
    models = ADAPTER.build_request("models", {}, target, stream=False)
    assert (models.method, models.url, models.body) == (
        "GET",
        "http://localhost:11434/v1/models",
        None,
    )


def test_openai_organization_project_and_operator_headers() -> None:
    target = upstream(
        extras={"organization": "org-1", "project": "proj_1", "headers": {"appid": "app-9"}}
    )
    headers = ADAPTER.build_request("chat", _chat(), target, stream=False).headers

    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["OpenAI-Project"] == "proj_1"
    assert headers["appid"] == "app-9"


def test_keyless_local_servers_get_no_authorization_header() -> None:
    request = ADAPTER.build_request("chat", _chat(), upstream("ollama", api_key=""), stream=False)

    assert "Authorization" not in request.headers


def test_streams_always_ask_for_usage_and_keep_other_stream_options() -> None:
    body = _chat(stream=True, stream_options={"include_obfuscation": False})
    request = ADAPTER.build_request("chat", body, upstream(), stream=True)

    sent = body_of(request.body)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}


def test_non_stream_requests_carry_no_stream_options() -> None:
    body = _chat(stream=False, stream_options={"include_usage": True})
    sent = body_of(ADAPTER.build_request("chat", body, upstream(), stream=False).body)

    assert sent["stream"] is False
    assert "stream_options" not in sent


def test_building_never_mutates_the_client_body() -> None:
    body = _chat(
        stream=True,
        temperature=3,
        stop=["a", "b"],
        n=2,
        tool_choice="required",
        tools=[{"type": "function", "function": {"name": "f", "strict": None}}],
        messages=[
            {"role": "system", "content": "one"},
            {"role": "system", "content": "two"},
            {"role": "assistant", "content": None, "reasoning_content": "r"},
        ],
    )
    before = copy.deepcopy(body)
    for provider in ("zhipu", "moonshot", "minimax", "deepseek", "gemini", "qianfan"):
        ADAPTER.build_request("chat", body, upstream(provider), stream=True)
    assert body == before


def test_zhipu_clamps_sampling_keeps_one_stop_and_drops_n() -> None:
    body = _chat(temperature=1.7, top_p=0, stop=["END", "STOP"], n=3)
    sent = body_of(ADAPTER.build_request("chat", body, upstream("zhipu"), stream=False).body)

    assert sent["temperature"] == 1.0
    assert sent["top_p"] == 0.01
    assert sent["stop"] == ["END"]
    assert "n" not in sent

    single = body_of(
        ADAPTER.build_request("chat", _chat(stop="X"), upstream("zhipu"), stream=False).body
    )
    assert single["stop"] == ["X"]


def test_moonshot_clamps_temperature_and_drops_what_it_refuses() -> None:
    body = _chat(
        temperature=2,
        tool_choice="required",
        functions=[{"name": "f"}],
        function_call="auto",
        tools=[{"type": "function", "function": {"name": "f"}}],
    )
    sent = body_of(ADAPTER.build_request("chat", body, upstream("moonshot"), stream=False).body)

    assert sent["temperature"] == 1.0
    assert "tool_choice" not in sent
    assert "functions" not in sent
    assert "function_call" not in sent
    assert sent["tools"] == [{"type": "function", "function": {"name": "f"}}]


def test_moonshot_keeps_a_named_tool_choice() -> None:
    choice = {"type": "function", "function": {"name": "f"}}
    sent = body_of(
        ADAPTER.build_request(
            "chat", _chat(tool_choice=choice), upstream("moonshot"), stream=False
        ).body
    )
    assert sent["tool_choice"] == choice


def test_kimi_k2_5_sampling_parameters_are_left_at_their_defaults() -> None:
    target = upstream("moonshot", model="kimi-k2.5")
    body = _chat(temperature=0.3, top_p=0.9, n=1, max_tokens=10)
    sent = body_of(ADAPTER.build_request("chat", body, target, stream=False).body)

    assert sent == {
        "model": "kimi-k2.5",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 10,
    }


def test_minimax_request_is_stripped_to_what_it_accepts() -> None:
    body = {
        "model": "alias",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
        "top_p": 1.5,
        "n": 1,
        "parallel_tool_calls": True,
        "tool_choice": "required",
        "tools": [
            {"type": "function", "function": {"name": "a", "parameters": {}, "strict": None}},
            {"type": "function", "function": {"name": "b", "strict": True}},
        ],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
            {"role": "system", "content": [{"type": "text", "text": "Use metric."}]},
        ],
    }
    target = upstream("minimax", model="MiniMax-M2")
    sent = body_of(ADAPTER.build_request("chat", body, target, stream=True).body)

    assert sent == {
        "model": "MiniMax-M2",
        "stream": True,
        "temperature": 0.01,
        "top_p": 1.0,
        "tools": [
            {"type": "function", "function": {"name": "a", "parameters": {}}},
            {"type": "function", "function": {"name": "b", "strict": True}},
        ],
        "messages": [
            {"role": "system", "content": "Be brief.\n\nUse metric."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]},
        ],
    }


def test_minimax_keeps_auto_and_none_tool_choice() -> None:
    for choice in ("auto", "none"):
        body = _chat(tool_choice=choice)
        request = ADAPTER.build_request("chat", body, upstream("minimax"), stream=False)
        assert body_of(request.body)["tool_choice"] == choice


def test_deepseek_keeps_reasoning_content_and_drops_reasoner_logprobs() -> None:
    """DeepSeek V4 in thinking mode refuses a tool-call turn whose reasoning_content was not
    passed back; the V3-era rule that stripped it from history is gone."""
    tool_turn = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Two plus two.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{}"}}
        ],
    }
    body = _chat(
        logprobs=True,
        top_logprobs=2,
        messages=[
            {"role": "user", "content": "2+2?"},
            tool_turn,
            {"role": "tool", "tool_call_id": "call_1", "content": "4"},
        ],
    )
    reasoner = upstream("deepseek", model="deepseek-reasoner")
    sent = body_of(ADAPTER.build_request("chat", body, reasoner, stream=False).body)

    assert sent["messages"][1] == tool_turn
    assert "logprobs" not in sent
    assert "top_logprobs" not in sent

    v4 = upstream("deepseek", model="deepseek-v4-pro")
    sent = body_of(ADAPTER.build_request("chat", body, v4, stream=False).body)
    assert sent["logprobs"] is True
    assert sent["messages"][1]["reasoning_content"] == "Two plus two."


def test_thinking_blocks_never_reach_a_chat_provider() -> None:
    """thinking_blocks carries signed Anthropic thinking through the chat pivot; no chat
    provider knows the field, so it is dropped while reasoning_content stays."""
    turn = {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "Two plus two.",
        "thinking_blocks": [{"type": "thinking", "thinking": "Two plus two.", "signature": "s"}],
    }
    body = _chat(messages=[{"role": "user", "content": "2+2?"}, turn])
    sent = body_of(ADAPTER.build_request("chat", body, upstream("zhipu"), stream=False).body)
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "Two plus two.",
    }
    assert "thinking_blocks" in body["messages"][1]  # the client's body is never changed


def test_openai_and_azure_drop_the_thinking_switch() -> None:
    body = _chat(thinking={"type": "enabled"}, reasoning_effort="low")
    for provider in ("openai", "azure"):
        sent = body_of(ADAPTER.build_request("chat", body, upstream(provider), stream=False).body)
        assert "thinking" not in sent and sent["reasoning_effort"] == "low"


def test_gemini_drops_fields_its_compat_layer_rejects() -> None:
    body = _chat(thinking={"type": "enabled"}, web_search_options={}, reasoning_effort="low")
    sent = body_of(ADAPTER.build_request("chat", body, upstream("gemini"), stream=False).body)

    assert "thinking" not in sent
    assert "web_search_options" not in sent
    assert sent["reasoning_effort"] == "low"


def test_qianfan_model_ids_are_lower_case() -> None:
    target = upstream("qianfan", model="ERNIE-4.5-Turbo-128K")
    sent = body_of(ADAPTER.build_request("chat", _chat(), target, stream=False).body)

    assert sent["model"] == "ernie-4.5-turbo-128k"


def test_unknown_fields_pass_through_to_providers_without_quirks() -> None:
    body = _chat(top_k=20, enable_thinking=False, extra={"x": 1})
    request = ADAPTER.build_request("chat", body, upstream("siliconflow"), stream=False)

    assert orjson.loads(request.body or b"")["enable_thinking"] is False
    assert body_of(request.body)["top_k"] == 20
