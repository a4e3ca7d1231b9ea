"""A token no Authorization header can carry is refused when the gateway starts.

Before: ``STREAMSENSE_GATEWAY_TOKEN`` read from a secret file with its trailing newline (or
holding a non-ASCII letter) was accepted, the gateway logged "token required" and every client
got 401 "missing or wrong token" for ever: HTTP strips the newline from a header value and
sends header bytes as Latin-1, so no request could ever match.
"""

from __future__ import annotations

import pytest

from streamsense.services.exceptions import ConfigError
from streamsense.services.gateway.settings import GatewaySettings

GOOD = "s3cret-token-for-tests"


@pytest.mark.parametrize(
    "token", [GOOD + "\n", GOOD + "\r\n", " " + GOOD, GOOD + "\t", "tökenabcdefghij", GOOD + "\x7f"]
)
def test_tokens_a_header_cannot_carry_are_refused_with_the_cause(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMSENSE_GATEWAY_TOKEN", token)
    with pytest.raises(ConfigError, match="printable ASCII.*trailing newline from a secret file"):
        GatewaySettings(gateway_host="0.0.0.0")


def test_printable_tokens_are_kept_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    for token in (GOOD, "a b c d e f g h", "!#$%&()*+,-./:;<=>?@[]^_`{|}~"):
        monkeypatch.setenv("STREAMSENSE_GATEWAY_TOKEN", token)
        secret = GatewaySettings(gateway_host="0.0.0.0").gateway_token
        assert secret is not None and secret.get_secret_value() == token
