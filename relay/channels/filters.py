"""Subscription filters: JMESPath expressions over a message's `name` and `extras.headers`,
as Ably evaluates them for `[filter=...]` channels. A message is delivered when the expression
is truthy for it (JMESPath truthiness: not null, false, or empty)."""

from __future__ import annotations

from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from channel_relay.protocol.errors import AblyError

__all__ = ["MessageFilter"]


class MessageFilter:
    def __init__(self, expression: str) -> None:
        try:
            self._compiled = jmespath.compile(expression)
        except JMESPathError as error:
            raise AblyError.invalid_channel_name(f"Invalid filter expression: {error}") from None
        self.expression = expression

    def matches(self, message: dict[str, Any]) -> bool:
        extras = message.get("extras")
        headers = extras.get("headers") if isinstance(extras, dict) else None
        subject = {"name": message.get("name"), "headers": headers}
        try:
            result = self._compiled.search(subject)
        except JMESPathError:
            return False
        if result is None or result is False:
            return False
        return not (isinstance(result, str | list | dict) and not result)
