"""Why a request could not be authenticated. All are UNAUTHENTICATED to the client."""

from __future__ import annotations

from ..domain.errors import Unauthenticated


class MissingToken(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("Send a token: 'Authorization: Bearer <token>'.")


class InvalidToken(Unauthenticated):
    pass


class ExpiredToken(InvalidToken):
    def __init__(self) -> None:
        super().__init__("The token has expired; get a new one.")
