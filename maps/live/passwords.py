"""The password policy of the live map's users: long enough, not blank, not one of the
passwords every guessing list starts with.

The deny-list is small and shipped here: the most common passwords and keyboard walks, and the
words they are built from, so ``Password1234!`` is refused like ``password``. A policy with a
12-character minimum makes most of such a list moot; what is left are the long, common ones.
"""

from __future__ import annotations

import re

#: The fewest characters a password may have.
MIN_PASSWORD_LENGTH = 12
#: The most characters a password may have (argon2 hashes any length; this bounds the work).
MAX_PASSWORD_LENGTH = 1024
#: The fewest different characters a password may have (refuses ``aaaaaaaaaaaa``).
MIN_DISTINCT = 5

#: Common passwords and the words they are built from, lower case, letters and digits only.
COMMON_PASSWORDS: frozenset[str] = frozenset(
    [
        "password",
        "passw0rd",
        "p4ssw0rd",
        "passwort",
        "motdepasse",
        "contrasena",
        "contraseña",
        "senha",
        "parola",
        "123456",
        "1234567",
        "12345678",
        "123456789",
        "1234567890",
        "12345678910",
        "123123",
        "123321",
        "654321",
        "987654321",
        "0987654321",
        "111111",
        "000000",
        "121212",
        "112233",
        "123qwe",
        "qwe123",
        "1q2w3e",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1qaz2wsx",
        "1qaz2wsx3edc",
        "zaq12wsx",
        "zaq1zaq1",
        "qwerty",
        "qwertyuiop",
        "qwertyuiop123",
        "qwerty123",
        "qwerty12345",
        "asdfgh",
        "asdfghjkl",
        "asdfghjkl123",
        "zxcvbn",
        "zxcvbnm",
        "qazwsx",
        "qazwsxedc",
        "abc123",
        "abcdef",
        "abcdefgh",
        "abcdefghijkl",
        "abcd1234",
        "aa123456",
        "iloveyou",
        "letmein",
        "welcome",
        "welcome1",
        "admin",
        "administrator",
        "root",
        "toor",
        "changeme",
        "changeit",
        "default",
        "secret",
        "guest",
        "test",
        "tester",
        "testing",
        "login",
        "master",
        "hello",
        "monkey",
        "dragon",
        "shadow",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "basketball",
        "soccer",
        "hockey",
        "superman",
        "batman",
        "spiderman",
        "starwars",
        "pokemon",
        "trustno1",
        "whatever",
        "freedom",
        "michael",
        "jordan",
        "jennifer",
        "hunter",
        "ranger",
        "buster",
        "thomas",
        "robert",
        "charlie",
        "daniel",
        "computer",
        "internet",
        "access",
        "mustang",
        "maggie",
        "killer",
        "summer",
        "winter",
        "flower",
        "lovely",
        "loveme",
        "babygirl",
        "ashley",
        "nicole",
        "jessica",
        "qwerty1",
        "password1",
        "password12",
        "password123",
        "password1234",
        "passwordpassword",
        "letmein123",
        "welcome123",
        "admin123",
        "admin1234",
        "administrator123",
        "root1234",
        "iloveyou123",
        "sunshine123",
        "princess123",
        "football123",
        "monkey123",
        "dragon123",
        "starwars123",
        "correcthorsebatterystaple",
        "thequickbrownfox",
        "mypassword",
        "yourpassword",
        "newpassword",
        "oldpassword",
        "temppassword",
        "temporary",
        "vigil",
        "vigil123",
        "commander",
        "border",
        "borderpatrol",
        "patrol",
        "agent",
        "planner",
        "sector",
        "tucson",
    ]
)

_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_NOT_ALNUM = re.compile(r"[\W_]+")


def password_problem(password: str, name: str = "") -> str | None:
    """What is wrong with ``password`` for the user ``name`` under the policy, or ``None``.

    Refused: fewer than :data:`MIN_PASSWORD_LENGTH` or more than :data:`MAX_PASSWORD_LENGTH`
    characters, only whitespace, fewer than :data:`MIN_DISTINCT` different characters, the
    user's own name, or a common password (of :data:`COMMON_PASSWORDS`, also with digits and
    symbols around it).
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"has {len(password)} characters; expected at least {MIN_PASSWORD_LENGTH}"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"has {len(password)} characters; expected at most {MAX_PASSWORD_LENGTH}"
    if not password.strip():
        return "is only whitespace; expected a passphrase"
    if len(set(password)) < MIN_DISTINCT:
        return f"uses {len(set(password))} different characters; expected at least {MIN_DISTINCT}"
    lowered = password.lower()
    squeezed = _NOT_ALNUM.sub("", lowered)
    if name and (lowered == name.lower() or squeezed == _NOT_ALNUM.sub("", name.lower())):
        return "is the user's own name; expected a passphrase"
    core = _NOT_ALNUM.sub("", _EDGES.sub("", lowered))
    if squeezed in COMMON_PASSWORDS or core in COMMON_PASSWORDS or squeezed.isdigit():
        return "is a common password (on the deny-list); expected a passphrase of your own"
    return None
