"""Estimated cost of provider calls, from a price table kept in settings.

Prices are USD. Override or extend the table with PRESSROOM_PRICES, a JSON object of
model → {"input_per_million": …, "output_per_million": …, "per_image": …, "per_call": …}.
Unknown models cost 0 (and say so in the logs), which keeps local models free.
"""

from __future__ import annotations

import json
import os
from functools import cache

from pydantic import BaseModel, TypeAdapter

from .logs import get_logger

log = get_logger(__name__)


class Price(BaseModel):
    input_per_million: float = 0.0
    output_per_million: float = 0.0
    per_image: float = 0.0
    per_call: float = 0.0


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input_per_million=0.15, output_per_million=0.60),
    "gpt-4o": Price(input_per_million=2.50, output_per_million=10.00),
    "gpt-4.1-mini": Price(input_per_million=0.40, output_per_million=1.60),
    "dall-e-3": Price(per_image=0.04),
    "gpt-image-1": Price(per_image=0.042),
    "tavily-search": Price(per_call=0.008),
    "tavily-extract": Price(per_call=0.008),  # one credit covers up to five URLs
}


@cache
def price_table() -> dict[str, Price]:
    table = dict(DEFAULT_PRICES)
    raw = os.environ.get("PRESSROOM_PRICES")
    if raw:
        table |= TypeAdapter(dict[str, Price]).validate_python(json.loads(raw))
    return table


def estimate_cost(
    model: str, input_tokens: int = 0, output_tokens: int = 0, images: int = 0, calls: int = 0
) -> float:
    price = price_table().get(model)
    if price is None:
        return 0.0
    cost = (
        input_tokens * price.input_per_million / 1e6
        + output_tokens * price.output_per_million / 1e6
        + images * price.per_image
        + calls * price.per_call
    )
    return round(cost, 6)
