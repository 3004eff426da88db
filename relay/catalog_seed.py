"""The provider catalog Baton starts with: base URLs per region, the dialects each provider
serves natively besides chat (its Anthropic-compatible Messages endpoint: DeepSeek
https://api-docs.deepseek.com/guides/anthropic_api, DashScope /apps/anthropic, Zhipu
/api/anthropic, Moonshot and MiniMax /anthropic; its own Responses endpoint, requests going
to base + "/responses": OpenAI, DeepSeek https://api-docs.deepseek.com/guides/responses_api,
DashScope .../compatible-mode/v1 (help.aliyun.com/zh/model-studio), MiniMax's mainland
https://platform.minimaxi.com/docs/api-reference/responses-create, Volcengine Ark's mainland
https://www.volcengine.com/docs/82379/1585128; Azure's is per resource, built by
``ProviderCredential.native_dialects``; Moonshot's is reported only by third parties with no
documented URL, and Zhipu has none, so both are reached through the chat pivot), and the
models it is known to offer.

Base URLs per region and model names come from each provider's API documentation
(docs/providers.md lists the pages). Operators edit the catalog in the admin afterwards;
this list only seeds it: ``seed`` creates the entries that are missing and leaves
existing rows alone, so a new entry reaches installed databases through a data
migration that calls ``seed`` again (relay/migrations/0002_seed_provider_catalog.py is
the first). Prices live in billing's price catalog, not here.
"""

from __future__ import annotations

from typing import Any

CATALOG: list[dict[str, Any]] = [
    {
        "slug": "openai",
        "name": "OpenAI",
        "regions": {"default": "https://api.openai.com/v1"},
        "dialects": {"responses": {"default": "https://api.openai.com/v1"}},
        "known_models": [
            "gpt-5",
            "gpt-5-mini",
            "gpt-4.1",
            "gpt-4o",
            "gpt-4o-mini",
            "o3",
            "o4-mini",
        ],
        "embedding_models": ["text-embedding-3-small", "text-embedding-3-large"],
    },
    {
        "slug": "azure",
        "name": "Azure OpenAI",
        "family": "azure",
        "auth_style": "api-key",
        "requires_base_url": True,
        "regions": {},
        "known_models": ["gpt-4o", "gpt-4o-mini", "gpt-4.1"],
    },
    {
        "slug": "anthropic",
        "name": "Anthropic",
        "family": "anthropic",
        "auth_style": "x-api-key",
        "regions": {"default": "https://api.anthropic.com/v1"},
        "known_models": [
            "claude-sonnet-5-5",
            "claude-opus-5-5",
            "claude-haiku-5-5",
            "claude-fable-5-1",
            "claude-opus-5",
            "claude-sonnet-4-5",
            "claude-opus-4-1",
            "claude-haiku-4-5",
        ],
    },
    {
        "slug": "gemini",
        "name": "Google Gemini",
        "regions": {"default": "https://generativelanguage.googleapis.com/v1beta/openai"},
        "known_models": ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-3-flash-preview"],
        "embedding_models": ["gemini-embedding-001"],
    },
    {
        "slug": "deepseek",
        "name": "DeepSeek",
        "regions": {"default": "https://api.deepseek.com/v1"},
        "dialects": {
            "messages": {"default": "https://api.deepseek.com/anthropic/v1"},
            "responses": {"default": "https://api.deepseek.com"},
        },
        "known_models": [
            "deepseek-v4-flash",
            "deepseek-v4-pro",
            "deepseek-chat",
            "deepseek-reasoner",
        ],
    },
    {
        "slug": "qwen",
        "name": "Alibaba Qwen (DashScope)",
        "default_region": "cn",
        "regions": {
            "cn": "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            "us": "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
        },
        "dialects": {
            "messages": {
                "cn": "https://dashscope.aliyuncs.com/apps/anthropic/v1",
                "intl": "https://dashscope-intl.aliyuncs.com/apps/anthropic/v1",
            },
            "responses": {
                "cn": "https://dashscope.aliyuncs.com/compatible-mode/v1",
                "intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
            },
        },
        "known_models": [
            "qwen3-max",
            "qwen3.5-plus",
            "qwen3.5-flash",
            "qwen-plus",
            "qwen-flash",
            "qwen3-coder-plus",
        ],
        "embedding_models": ["text-embedding-v4", "text-embedding-v3"],
    },
    {
        "slug": "zhipu",
        "name": "Zhipu GLM",
        "default_region": "cn",
        "regions": {
            "cn": "https://open.bigmodel.cn/api/paas/v4",
            "intl": "https://api.z.ai/api/paas/v4",
        },
        "dialects": {
            "messages": {
                "cn": "https://open.bigmodel.cn/api/anthropic/v1",
                "intl": "https://api.z.ai/api/anthropic/v1",
            }
        },
        "known_models": ["glm-5", "glm-4.7", "glm-4.6", "glm-4.5", "glm-4.5-air", "glm-4.5-flash"],
        "embedding_models": ["embedding-3", "embedding-2"],
    },
    {
        "slug": "moonshot",
        "name": "Moonshot Kimi",
        "default_region": "cn",
        "regions": {"cn": "https://api.moonshot.cn/v1", "intl": "https://api.moonshot.ai/v1"},
        "dialects": {
            "messages": {
                "cn": "https://api.moonshot.cn/anthropic/v1",
                "intl": "https://api.moonshot.ai/anthropic/v1",
            }
        },
        "known_models": [
            "kimi-k2.6",
            "kimi-k2.5",
            "moonshot-v1-8k",
            "moonshot-v1-32k",
            "moonshot-v1-128k",
        ],
    },
    {
        "slug": "minimax",
        "name": "MiniMax",
        "default_region": "cn",
        "regions": {"cn": "https://api.minimaxi.com/v1", "intl": "https://api.minimax.io/v1"},
        "dialects": {
            "messages": {
                "cn": "https://api.minimaxi.com/anthropic/v1",
                "intl": "https://api.minimax.io/anthropic/v1",
            },
            "responses": {"cn": "https://api.minimaxi.com/v1"},
        },
        "known_models": [
            "MiniMax-M3",
            "MiniMax-M2.7",
            "MiniMax-M2.5",
            "MiniMax-M2",
            "MiniMax-Text-01",
        ],
        "has_models_endpoint": False,
    },
    {
        "slug": "qianfan",
        "name": "Baidu Qianfan",
        "regions": {"default": "https://qianfan.baidubce.com/v2"},
        "known_models": ["ernie-4.5-turbo-128k", "ernie-x1-turbo-32k", "ernie-speed-128k"],
        "embedding_models": ["embedding-v1", "bge-large-zh"],
    },
    {
        "slug": "hunyuan",
        "name": "Tencent Hunyuan",
        "default_region": "cn",
        "regions": {
            "cn": "https://api.hunyuan.cloud.tencent.com/v1",
            "intl": "https://tokenhub-intl.tencentcloudmaas.com/v1",
        },
        "known_models": ["hunyuan-turbos-latest", "hunyuan-t1-latest", "hunyuan-lite"],
    },
    {
        "slug": "ark",
        "name": "Volcengine Ark (Doubao)",
        "default_region": "cn",
        "regions": {
            "cn": "https://ark.cn-beijing.volces.com/api/v3",
            "intl": "https://ark.ap-southeast.bytepluses.com/api/v3",
        },
        "dialects": {"responses": {"cn": "https://ark.cn-beijing.volces.com/api/v3"}},
        "known_models": [
            "doubao-seed-1-6-250615",
            "doubao-seed-1-6-flash-250615",
            "doubao-1-5-pro-32k-250115",
        ],
    },
    {
        "slug": "siliconflow",
        "name": "SiliconFlow",
        "default_region": "cn",
        "regions": {
            "cn": "https://api.siliconflow.cn/v1",
            "intl": "https://api.siliconflow.com/v1",
        },
        "known_models": ["deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-R1", "Qwen/Qwen3-8B"],
        "embedding_models": ["BAAI/bge-m3"],
    },
    {
        "slug": "stepfun",
        "name": "StepFun",
        "default_region": "cn",
        "regions": {"cn": "https://api.stepfun.com/v1", "intl": "https://api.stepfun.ai/v1"},
        "known_models": ["step-3.5-flash", "step-2-16k", "step-1-8k"],
    },
    {
        "slug": "ollama",
        "name": "Ollama (self-hosted)",
        "regions": {"default": "http://localhost:11434/v1"},
        "key_optional": True,
        "known_models": ["llama3.2", "qwen3:8b"],
    },
    {
        "slug": "vllm",
        "name": "vLLM (self-hosted)",
        "requires_base_url": True,
        "regions": {},
        "key_optional": True,
    },
    {
        "slug": "custom",
        "name": "Custom OpenAI-compatible",
        "requires_base_url": True,
        "regions": {},
    },
]

# The built-in fake upstream, offered as a demo provider where it runs. Its address is
# not stored: ``Provider.base_url_for`` reads BATON_FAKE_UPSTREAM_URL at run time, and
# without that setting the provider is hidden and new teams get no demo credential.
DEMO_PROVIDER: dict[str, Any] = {
    "slug": "fake",
    "name": "Baton demo upstream",
    "is_demo": True,
    "key_optional": True,
    "regions": {},
    "known_models": ["demo-chat", "demo-fast"],
    "embedding_models": ["demo-embed"],
}
DEMO_MODEL = "demo-chat"


def seed(provider_model: Any) -> None:
    """Create missing catalog entries; leave operator edits to existing ones alone."""
    entries = [*CATALOG, DEMO_PROVIDER]
    # A migration seeds with the model as it was then: fields added later are left out
    # (the migration that added them fills them in).
    known = {f.name for f in provider_model._meta.get_fields()}
    for order, entry in enumerate(entries):
        defaults = {"sort_order": order * 10, "default_region": "default", **entry}
        defaults.pop("slug")
        defaults = {name: value for name, value in defaults.items() if name in known}
        provider_model.objects.get_or_create(slug=entry["slug"], defaults=defaults)
