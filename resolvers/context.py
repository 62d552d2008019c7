"""What every resolver gets in `info.context`."""

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


@dataclass(slots=True)
class Context:
    principal: Principal | None
    access: SessionAccess
    sessions: SessionService
    conversation: ConversationService
    sharing: SharingService
    audit: AuditService
    exports: ExportService
    search: SearchService
    templates: TemplateService
    clock: Clock
    request_id: str
    realtime: Hub | None = None
    retention: RetentionService | None = None
    erasure: ErasureService | None = None

    def require_principal(self) -> Principal:
        # @auth has already refused anonymous calls; this only narrows the type.
        assert self.principal is not None
        return self.principal

    def live(self) -> Hub:
        if self.realtime is None:
            raise RuntimeError("This server was built without live updates.")
        return self.realtime
