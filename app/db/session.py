"""The request boundary owns the transaction: one session per request, committed at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.runtime import RuntimeDep


async def get_session(rt: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """Commit when the handler returns normally, roll back when it raises."""
    async with rt.session_factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# "function" scope: commit before the response leaves, so a client that reads right
# after a 202 sees its own write, and a failed commit becomes a 500, not a lost write.
DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
