"""Template records: the session templates admins define for a chat app of their entity."""

from __future__ import annotations

import orjson

from ...domain.models import AuditEvent, EntityTemplate, SessionTemplate, StarterTurn, TurnRole
from . import codec, driver
from .audit import insert_audit
from .codec import to_micros

_TEMPLATE_COLUMNS = (
    "id, entity_id, chat_app_id, name, name_key, description, system_prompt, variables, "
    "starter_turns, created_by, created_at, updated_at"
)


def _template_row(t: EntityTemplate) -> tuple:
    return (
        t.id,
        t.entity_id,
        t.chat_app_id,
        t.template.name,
        t.name_key,
        t.template.description,
        t.template.system_prompt,
        codec.dump_json(t.template.variables),
        orjson.dumps(
            [{"role": s.role.value, "content": s.content} for s in t.template.starter_turns]
        ).decode(),
        t.created_by,
        to_micros(t.created_at),
        to_micros(t.updated_at),
    )


def _template_from_row(r: tuple) -> EntityTemplate:
    return EntityTemplate(
        entity_id=r[1],
        chat_app_id=r[2],
        template=SessionTemplate(
            id=r[0],
            name=r[3],
            description=r[5],
            system_prompt=r[6],
            variables=codec.load_json(r[7]),
            starter_turns=tuple(
                StarterTurn(TurnRole(s["role"]), s["content"]) for s in orjson.loads(r[8])
            ),
        ),
        created_by=r[9],
        created_at=codec.from_micros(r[10]),
        updated_at=codec.from_micros(r[11]),
    )


def create_template(conn: driver.Connection, template: EntityTemplate, audit: AuditEvent) -> None:
    conn.execute(
        f"INSERT INTO templates ({_TEMPLATE_COLUMNS}) VALUES ({', '.join('?' * 12)})",
        _template_row(template),
    )
    insert_audit(conn, audit)


def get_template(
    conn: driver.Connection, entity_id: str, template_id: str
) -> EntityTemplate | None:
    row = conn.execute(
        f"SELECT {_TEMPLATE_COLUMNS} FROM templates WHERE id = ? AND entity_id = ?",
        (template_id, entity_id),
    ).fetchone()
    return None if row is None else _template_from_row(row)


def list_templates(
    conn: driver.Connection, entity_id: str, chat_app_id: str
) -> list[EntityTemplate]:
    rows = conn.execute(
        f"SELECT {_TEMPLATE_COLUMNS} FROM templates WHERE entity_id = ? AND chat_app_id = ?"
        " ORDER BY name_key, id",
        (entity_id, chat_app_id),
    ).fetchall()
    return [_template_from_row(r) for r in rows]


def update_template(conn: driver.Connection, template: EntityTemplate, audit: AuditEvent) -> bool:
    row = _template_row(template)
    updated = conn.execute(
        "UPDATE templates SET name = ?, name_key = ?, description = ?, system_prompt = ?,"
        " variables = ?, starter_turns = ?, updated_at = ? WHERE id = ? AND entity_id = ?",
        (*row[3:9], row[11], template.id, template.entity_id),
    ).rowcount
    if updated:
        insert_audit(conn, audit)
    return bool(updated)


def delete_template(
    conn: driver.Connection, entity_id: str, template_id: str, audit: AuditEvent
) -> bool:
    deleted = conn.execute(
        "DELETE FROM templates WHERE id = ? AND entity_id = ?", (template_id, entity_id)
    ).rowcount
    if deleted:
        insert_audit(conn, audit)
    return bool(deleted)
