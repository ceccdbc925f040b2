"""Kling's JWT authentication (UPSTREAM.md §B): HS256, `iss` = access key, `exp`, `nbf`."""

from __future__ import annotations

import time

import jwt

from app.simulator.errors import SimulatorError
from app.simulator.kling_wire import kling_error


def mint_kling_jwt(
    access_key: str,
    secret_key: str,
    *,
    now_s: float | None = None,
    ttl_s: float = 1800.0,
    not_before_s: float = 5.0,
) -> str:
    """A token as the official docs build one: valid from `not_before_s` ago for `ttl_s`."""
    now = time.time() if now_s is None else now_s
    claims = {"iss": access_key, "exp": int(now + ttl_s), "nbf": int(now - not_before_s)}
    return jwt.encode(claims, secret_key, algorithm="HS256")


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise kling_error(1001)
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise kling_error(1002, "Authorization must be `Bearer <jwt>`")
    return token


def _refusal(exc: jwt.InvalidTokenError) -> SimulatorError:
    # Subclasses first: an expired token is also an invalid one.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return kling_error(1004)
    if isinstance(exc, jwt.ImmatureSignatureError):
        return kling_error(1003)
    if isinstance(exc, jwt.InvalidSignatureError | jwt.InvalidIssuerError):
        return kling_error(1000, f"Authentication failed: {exc}")
    return kling_error(1002, f"Authorization is invalid: {exc}")


def verify_kling_jwt(authorization: str | None, access_key: str, secret_key: str) -> str:
    """The access key the request authenticates as; a 401 `SimulatorError` otherwise."""
    token = _bearer_token(authorization)
    try:
        jwt.decode(
            token,
            secret_key,
            algorithms=["HS256"],
            issuer=access_key,
            options={"require": ["iss", "exp", "nbf"]},
        )
    except jwt.InvalidTokenError as exc:
        raise _refusal(exc) from exc
    return access_key
