"""The usage ledger: one append-only row per relayed request."""

from __future__ import annotations

from django.db import models

from accounts.models import Team


class UsageRecord(models.Model):
    """What one /v1 request used. Unique on request id, so replays never double count.

    No prompt or response content is ever stored here.
    """

    request_id = models.CharField(max_length=64, unique=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_records")
    api_key_id = models.UUIDField(null=True, blank=True)
    endpoint = models.CharField(max_length=16)
    alias = models.CharField(max_length=128, blank=True)
    credential_id = models.UUIDField(null=True, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    upstream_model = models.CharField(max_length=128, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    estimated = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField()
    error_class = models.CharField(max_length=64, blank=True)
    streamed = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=1)
    latency_ms = models.FloatField(default=0)
    ttfb_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["team", "created_at"], name="usage_team_time")]

    def __str__(self) -> str:
        return self.request_id
