"""v4_1 error objects (SuiteCRM's ``soap/SoapErrorDefinitions.php``) and PHP failures."""

from __future__ import annotations

from typing import Any

_DEFINITIONS: dict[str, tuple[int, str, str]] = {
    "invalid_login": (
        10,
        "Invalid Login",
        "Login attempt failed please check the username and password",
    ),
    "invalid_session": (
        11,
        "Invalid Session ID",
        "The session ID is invalid",
    ),
    "user_not_configure": (
        12,
        "User Not Configured",
        "Please log into your instance of SugarCRM to configure your user. ",
    ),
    "no_module": (
        20,
        "Module Does Not Exist",
        "This module is not available on this server",
    ),
    "no_module_support": (
        30,
        "Module Not Supported",
        "This module does not support this feature",
    ),
    "no_relationship_support": (
        31,
        "Relationship Not Supported",
        "This module does not support this relationship",
    ),
    "no_access": (
        40,
        "Access Denied",
        "You do not have access",
    ),
    "duplicates": (
        50,
        "Duplicate Records",
        "Duplicate records have been found. Please be more specific.",
    ),
    "no_records": (
        51,
        "No Records",
        "No records were found.",
    ),
    "no_admin": (
        70,
        "Admin credentials are required",
        "The logged-in user is not an administrator",
    ),
    "invalid_call_error": (
        1000,
        "Invalid call for this module",
        "This is an invalid call for this module. Please look at WSDL file for details",
    ),
    "invalid_data_format": (
        1001,
        "Invalid data sent",
        "The data sent for this function is invalid. Please look at WSDL file for details",
    ),
}


def v4_error(key: str) -> dict[str, Any]:
    """The error object Sugar answers for ``key``.

    A key without a definition (``invalid_call``, what an unknown method sets) gives number
    ``"-1"`` as a string, as SoapError does.
    """
    if key not in _DEFINITIONS:
        return {
            "name": f"An Undefined Error - {key} occurred",
            "number": "-1",
            "description": f"There is no error definition for {key}",
        }
    number, name, description = _DEFINITIONS[key]
    return {"name": name, "number": number, "description": description}


class V4Error(Exception):
    """A v4_1 method failed with a Sugar error object (HTTP 200 with the object as body)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.payload = v4_error(key)


class PhpFatalError(Exception):
    """PHP would throw (unknown named parameter, type error): HTTP 500 with an empty body."""
