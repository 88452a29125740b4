"""The agent API's OpenAPI 3.1 schema, served at /api/v1/openapi.json.

Built from the same constants validation uses (roles, lengths, id range, time
range), so the schema and the importer cannot drift apart silently;
tests/test_api_schema.py runs schemathesis against it.
"""

import copy

from scoring.importing.validate import (
    CHAT_ROLES,
    EARLIEST,
    FUTURE_TOLERANCE,
    KEY_MAX,
    LATEST,
    MAX_TOKEN_ID,
    MEMORY_SECTIONS,
    ROLE_MAX,
)

_TIME_RANGE = f"Between {EARLIEST.isoformat()} and {LATEST.isoformat()} in UTC."

_MESSAGE = {
    "type": "object",
    "description": "A message.",
    "required": ["role", "text"],
    "additionalProperties": False,
    "properties": {
        "role": {"type": "string", "enum": list(CHAT_ROLES), "maxLength": ROLE_MAX},
        "text": {"type": "string", "description": "May be empty; no NUL, no lone surrogates."},
        "timestamp": {"type": ["string", "null"], "format": "date-time", "description": _TIME_RANGE},
        "token_ids": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "integer", "minimum": 0, "maximum": MAX_TOKEN_ID},
            "description": "The node's ids as the model sees them; left out, the agent's server "
            "tokenizes the rendered node. Where the server says its vocabulary size, every id "
            "must be below it.",
        },
    },
}
_MEMORY = copy.deepcopy(_MESSAGE)
_MEMORY["description"] = "A memory (only in identity and conversation)."
_MEMORY["required"] = ["memory", "text"]
del _MEMORY["properties"]["role"]
_MEMORY["properties"]["memory"] = {"type": "string", "minLength": 1, "maxLength": KEY_MAX}

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}

SNAPSHOT = {
    "type": "object",
    "required": ["agent", "taken_at", "system", "identity", "journal", "conversation"],
    "additionalProperties": False,
    "properties": {
        "agent": {"type": "string", "minLength": 1, "description": "The token's agent's name."},
        "taken_at": {
            "type": "string",
            "format": "date-time",
            "description": f"{_TIME_RANGE} At most {FUTURE_TOLERANCE.days} day after the server's clock "
            "(clock skew); later is a 400.",
        },
        **{
            section: {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Message"}
                if section not in MEMORY_SECTIONS
                else {"oneOf": [{"$ref": "#/components/schemas/Message"},
                                {"$ref": "#/components/schemas/Memory"}]},
            }
            for section in ("system", "identity", "journal")
        },
        "conversation": {
            "type": "array",
            "minItems": 1,
            "items": {"oneOf": [{"$ref": "#/components/schemas/Message"},
                                {"$ref": "#/components/schemas/Memory"}]},
        },
    },
}

IMPORTED = {
    "type": "object",
    "required": ["id", "url", "nodes", "memories", "responses", "tokens"],
    "properties": {
        "id": {"type": "integer", "description": "The snapshot's id."},
        "url": {"type": "string", "format": "uri", "description": "The snapshot's page."},
        **{name: {"type": "integer", "minimum": 0, "description": description} for name, description in (
            ("nodes", "Nodes in the snapshot, every section."),
            ("memories", "Distinct memory keys (a key that appears twice counts once)."),
            ("responses", "Assistant responses in its conversation."),
            ("tokens", "Tokens in all its nodes."),
        )},
    },
}


def _answer(description, schema_name):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


SCHEMA = {
    "openapi": "3.1.0",
    "info": {
        "title": "memscore agent API",
        "version": "1",
        "description": "How an agent sends its context. The format: docs/snapshot-format.md.",
    },
    "paths": {
        "/api/v1/snapshots": {
            "post": {
                "operationId": "postSnapshot",
                "summary": "Import a snapshot of the token's agent (idempotent on its content)",
                "security": [{"agentToken": []}],
                "requestBody": {
                    "required": True,
                    "description": "The snapshot's JSON (docs/snapshot-format.md), read as JSON whatever the "
                                   "Content-Type says.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Snapshot"}}},
                },
                "responses": {
                    "201": _answer("Imported: a new snapshot.", "Imported"),
                    "200": _answer("The agent already sent this content: the stored snapshot.", "Imported"),
                    "400": _answer("Invalid snapshot: every problem, each naming its field.", "InvalidSnapshot"),
                    "401": _answer("Missing or wrong token (the body is not read).", "Error"),
                    "405": _answer("Only POST.", "Error"),
                    "411": _answer("No Content-Length, and the web server does not pass on a chunked "
                                   "body (Django's runserver; gunicorn does).", "Error"),
                    "413": _answer("The body is over the server's limit, which it names.", "TooLarge"),
                    "502": _answer("The agent's server could not tokenize a node: nothing imported.", "Error"),
                },
            }
        }
    },
    "components": {
        "securitySchemes": {
            "agentToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The agent's API token, issued on its page or by add_agent.",
            }
        },
        "schemas": {
            "Snapshot": SNAPSHOT,
            "Message": _MESSAGE,
            "Memory": _MEMORY,
            "Imported": IMPORTED,
            "Error": _ERROR,
            "InvalidSnapshot": {
                "type": "object",
                "required": ["error", "errors"],
                "properties": {
                    "error": {"const": "invalid snapshot"},
                    "errors": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                },
            },
            "TooLarge": {
                "type": "object",
                "required": ["error", "limit"],
                "properties": {"error": {"type": "string"}, "limit": {"type": "integer"}},
            },
        },
    },
}


def openapi_schema():
    """A copy of the schema, safe to hand to a response."""
    return copy.deepcopy(SCHEMA)
