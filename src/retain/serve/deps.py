"""Dependencies of the routes: the worker's state, and the bearer token for writes.

The token is compared with :func:`hmac.compare_digest`, whose time does not depend on where
the strings differ, so it cannot be guessed a character at a time. A server started without a
token refuses every protected route rather than leaving it open.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from retain.serve.service import ServeState
from retain.serve.settings import TOKEN_ENV


async def get_state(request: Request) -> ServeState:  # async: no thread hand-off
    return request.app.state.serve


State = Annotated[ServeState, Depends(get_state)]


async def require_token(state: State,
                        authorization: Annotated[str | None, Header()] = None) -> None:
    """401 without ``Authorization: Bearer TOKEN``, 403 for a wrong one."""
    token = state.settings.token
    if token is None:
        raise HTTPException(403, f"this server has no token, so it accepts no writes; start "
                                 f"it with --token-file FILE or ${TOKEN_ENV}")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise HTTPException(401, "this route needs the header 'Authorization: Bearer TOKEN'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(403, "the bearer token is wrong")


Authorized = Depends(require_token)
