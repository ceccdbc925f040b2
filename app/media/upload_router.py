"""`POST /v1/uploads`: a client's media, streamed in under the size limit and probed."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from app.auth.dependencies import CurrentPrincipal
from app.db.session import DbSession
from app.errors import problem_responses
from app.media import service
from app.media.schemas import UploadOut
from app.runtime import RuntimeDep

router = APIRouter(tags=["media"], responses=problem_responses(401, 413, 422))


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "/v1/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadOut,
    openapi_extra=UPLOAD_BODY,
)
async def create_upload(
    request: Request, session: DbSession, rt: RuntimeDep, principal: CurrentPrincipal
) -> UploadOut:
    """Upload a character image (png/jpeg) or motion video (mp4/mov), field `file`; it is
    probed against the model's limits, and the size limit is enforced while it streams."""
    media = rt.media
    upload = await service.create_upload(session, rt.settings, media, principal, request)
    return UploadOut(
        id=upload.id,
        kind="image" if upload.kind == "image" else "video",
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        width=upload.width,
        height=upload.height,
        duration_s=upload.duration_s,
        url=media.signed_url(upload.storage_key, upload.expires_at),
        expires_at=upload.expires_at,
    )
