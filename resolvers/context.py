"""What every resolver gets in `info.context`: the caller, the request id and the services."""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.access import SessionAccess
from ..domain.audit import AuditService
from ..domain.clock import Clock
from ..domain.conversation import ConversationService
from ..domain.erasure import ErasureService
from ..domain.export import ExportService
from ..domain.models import Principal
from ..domain.retention import RetentionService
from ..domain.search import SearchService
from ..domain.sessions import SessionService
from ..domain.sharing import SharingService
from ..domain.templates import TemplateService
from ..realtime.hub import Hub


@dataclass(frozen=True, slots=True)
class Services:
    """The instance's domain services, built once by the composition root and shared by
    every request."""

    access: SessionAccess
    sessions: SessionService
    conversation: ConversationService
    sharing: SharingService
    audit: AuditService
    exports: ExportService
    search: SearchService
    templates: TemplateService
    clock: Clock
    retention: RetentionService
    erasure: ErasureService
    realtime: Hub


@dataclass(slots=True)
class Context:
    principal: Principal | None
    request_id: str
    services: Services

    def require_principal(self) -> Principal:
        # @auth has already refused anonymous calls; this only narrows the type.
        assert self.principal is not None
        return self.principal
