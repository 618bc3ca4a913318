"""Input models of the controller dialect: parameters as form fields or as a JSON object.

Unknown parameters are refused (`extra="forbid"`), so a typo never silently does nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeVar

from fastapi import Request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_core import ErrorDetails

from postmeister.api.common import check_text, decode_json_object, media_type
from postmeister.api.errors import MalformedBody, UnsupportedMediaType
from postmeister.errors import FieldProblem, InvalidInput

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_params(request: Request) -> dict[str, Any]:
    """The request's parameters, from a JSON object or a form; an empty body is `{}`.

    Runs after authentication (`routing.AuthenticatedRoute`), never before."""
    raw = await request.body()
    kind = media_type(request)
    if not raw.strip():
        return {}
    if kind == "application/json" or kind.endswith("+json"):
        return decode_json_object(raw)
    if kind in FORM_TYPES:
        form = await request.form()
        params: dict[str, Any] = {}
        for key in form:
            values = form.getlist(key)
            if len(values) != 1 or not isinstance(values[0], str):
                raise MalformedBody(f"parameter {key!r} must be given once, as text")
            check_text(values[0])
            params[key] = values[0]
        return params
    raise UnsupportedMediaType(
        "send parameters as application/json or application/x-www-form-urlencoded"
    )


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


def _form_bool(value: Any) -> Any:
    """Booleans arrive as JSON booleans or as form text ("true"/"false"/"1"/"0")."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    return value


FormBool = Annotated[StrictBool, BeforeValidator(_form_bool)]


class AccountCreate(Params):
    name: StrictStr
    domain: StrictStr
    password: StrictStr
    submission_disabled: FormBool = False
    spoofing_whitelist: StrictStr = ""
    subaddress_extension: FormBool = False


class PasswordParams(Params):
    password: StrictStr


class SpoofingWhitelistParams(Params):
    spoofing_whitelist: StrictStr


class AliasCreate(Params):
    name: StrictStr
    domain: StrictStr
    to: StrictStr


class AliasUpdate(Params):
    to: StrictStr


class NoParams(Params):
    pass


P = TypeVar("P", bound=Params)


def parse(model: type[P], params: dict[str, Any]) -> P:
    """Validate parameters, turning every pydantic error into a named field problem."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise InvalidInput([_problem(error) for error in exc.errors()]) from exc


def _problem(error: ErrorDetails) -> FieldProblem:
    name = ".".join(str(part) for part in error["loc"]) or "body"
    messages = {
        "extra_forbidden": "unknown parameter",
        "missing": "this parameter is required",
        "string_type": "must be a string",
        "bool_type": "must be a boolean (true or false)",
        "string_too_long": "too long",
    }
    return FieldProblem(name, messages.get(error["type"], error["msg"]), error["type"])


MAX_ID: Final = 2**31 - 1  # ids are 32-bit integers in the database
# An object's id: a larger number names nothing, and PostgreSQL would refuse to compare it.
ObjectId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


class SyncSourceCreate(Params):
    url: StrictStr
    interval_seconds: StrictInt | None = None
    customer_id: ObjectId | None = None  # admin tokens only: whose source it is
