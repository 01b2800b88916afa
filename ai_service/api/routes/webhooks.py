"""Webhook endpoints of a company: document state changes, signed, delivered at least once."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from ai_service.api.deps import Context, CurrentCompany
from ai_service.outbox import webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookIn(BaseModel):
    url: str = Field(max_length=500, examples=["https://odoo.example.cl/dte-ai/webhook"])


class WebhookOut(BaseModel):
    id: str
    url: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="HMAC-SHA256 key of the X-DteAi-Signature header; shown only now"
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an endpoint",
    response_model=WebhookCreated,
)
def create_webhook(ctx: Context, company: CurrentCompany, body: WebhookIn) -> WebhookCreated:
    endpoint, secret = webhooks.register(ctx.engine, ctx.box, company.id, body.url)
    return WebhookCreated(**endpoint.__dict__, secret=secret)


@router.get("", summary="The company's endpoints", response_model=list[WebhookOut])
def list_webhooks(ctx: Context, company: CurrentCompany) -> list[WebhookOut]:
    return [WebhookOut(**e.__dict__) for e in webhooks.endpoints(ctx.engine, company.id)]


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop an endpoint")
def delete_webhook(ctx: Context, company: CurrentCompany, endpoint_id: str) -> None:
    webhooks.deactivate(ctx.engine, company.id, endpoint_id)
