"""Session templates defined by admins (`templates`), each of one entity and one chat app.

Step by step (without transactions), a template's audit events travel in its document's
outbox, as a share's do; a deletion first marks the template `state: "deleting"` (gone for
every read), then delivers the event, then removes it.
"""

from __future__ import annotations

from ...domain.models import AuditEvent, EntityTemplate
from . import codec
from .audit import AuditTrail
from .codec import DELETING, OUTBOX, STATE
from .connection import Connection, DriverSession
from .filters import VISIBLE


class TemplateRecords:
    def __init__(self, connection: Connection, audit: AuditTrail) -> None:
        self._connection = connection
        self._audit = audit

    async def create_template(self, template: EntityTemplate, audit: AuditEvent) -> None:
        templates = self._connection.templates

        async def work(s: DriverSession) -> None:
            doc = codec.template_doc(template)
            doc[OUTBOX] = [codec.audit_doc(audit)]
            await templates.insert_one(doc, session=s)
            await self._audit.deliver(templates, template.id, doc[OUTBOX], s)

        await self._connection.atomic(work)

    async def get_template(self, entity_id: str, template_id: str) -> EntityTemplate | None:
        doc = await self._connection.templates.find_one(
            {"_id": template_id, "entity_id": entity_id, **VISIBLE}
        )
        return None if doc is None else codec.template_from(doc)

    async def list_templates(self, entity_id: str, chat_app_id: str) -> list[EntityTemplate]:
        cursor = self._connection.templates.find(
            {"entity_id": entity_id, "chat_app_id": chat_app_id, **VISIBLE}
        ).sort([("name_key", 1), ("_id", 1)])
        return [codec.template_from(d) for d in await cursor.to_list(None)]

    async def update_template(self, template: EntityTemplate, audit: AuditEvent) -> bool:
        templates = self._connection.templates
        event = codec.audit_doc(audit)

        async def work(s: DriverSession) -> bool:
            updated = await self._audit.update_and_record(
                templates,
                {"_id": template.id, "entity_id": template.entity_id, **VISIBLE},
                {"$set": codec.template_fields(template)},
                event,
                s,
                projection={"_id": 1},
            )
            return updated is not None

        return await self._connection.atomic(work)

    async def delete_template(self, entity_id: str, template_id: str, audit: AuditEvent) -> bool:
        templates = self._connection.templates
        event = codec.audit_doc(audit)

        async def work(s: DriverSession) -> bool:
            marked = await self._audit.update_and_record(
                templates,
                {"_id": template_id, "entity_id": entity_id, **VISIBLE},
                {"$set": {STATE: DELETING}},
                event,
                s,
                projection={"_id": 1},
            )
            if marked is None:
                return False
            await templates.delete_one({"_id": template_id, STATE: DELETING}, session=s)
            return True

        return await self._connection.atomic(work)
