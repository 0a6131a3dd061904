"""Schemathesis hooks for the vault (loaded by scripts/reliability/schemathesis.sh through
SCHEMATHESIS_HOOKS). Three things:

1. Authentication per operation: the vault has two bearer schemes in its document but five kinds
   of key; each operation gets the key whose role may call it (publishable key for
   POST /v1/tokens, admin key for /v1/keys*, /v1/fonts*, /v1/webhook_endpoints* and redelivery,
   read-only key for /v1/audit_events, payments key for /v1/payments*, /v1/refunds* and
   /v1/events*, the tokenization key for the token routes). Keys come from the environment
   (VAULT_PK, VAULT_SK, VAULT_ADMIN_KEY, VAULT_READ_ONLY_KEY, VAULT_PAYMENTS_KEY), made by
   `vault init` for this run.
2. `font/woff2` bodies (POST /v1/fonts) serialised as raw bytes.
   `Origin` of POST /v1/tokens and OPTIONS /v1/tokens: the vault's own origin (VAULT_ORIGIN)
   instead of a random string most of the time, so the card validation behind the origin check
   is reached at all; a random one is kept one time in four. Likewise the `key` of
   GET /v1/frame (the publishable key) and the file of GET /v1/frame/{file} (one that exists).
3. The run's own keys are never revoked, rotated or changed (Schemathesis reuses ids it saw in
   earlier answers, e.g. of GET /v1/keys, and revoking the admin key would turn the rest of the
   run into 401s): a path id naming one of them (VAULT_OWN_KEY_IDS) becomes one of the spare
   keys made for this purpose (VAULT_SPARE_KEY_IDS), so those routes still reach their success
   paths.
4. The check `no_card_data_echoed`: no response, apart from the card of a successful detokenize,
   carries card data: no number or CVC of the request, no 13-19 digit Luhn-valid run, no
   `number`/`cvc` field.
"""

import json
import os
import re
import sys

import schemathesis

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from leak_scan import luhn, mask  # noqa: E402 - the one Luhn check of the reliability scripts

KEYS = {
    "pk": os.environ.get("VAULT_PK", ""),
    "sk": os.environ.get("VAULT_SK", ""),
    "admin": os.environ.get("VAULT_ADMIN_KEY", ""),
    "read_only": os.environ.get("VAULT_READ_ONLY_KEY", ""),
    "payments": os.environ.get("VAULT_PAYMENTS_KEY", ""),
}
ORIGIN = os.environ.get("VAULT_ORIGIN", "")
OWN_KEY_IDS = set(filter(None, os.environ.get("VAULT_OWN_KEY_IDS", "").split(",")))
SPARE_KEY_IDS = list(filter(None, os.environ.get("VAULT_SPARE_KEY_IDS", "").split(",")))

# POST /v1/fonts takes the WOFF2 file as its body (`font/woff2`): generated bodies are sent as
# raw bytes, like `application/octet-stream` (the vault answers 400 font_not_woff2 to them).
schemathesis.serializer.alias("font/woff2", "application/octet-stream")


def key_for(method: str, path: str) -> str:
    if path == "/v1/tokens" and method == "POST":
        return KEYS["pk"]
    if path.startswith(("/v1/keys", "/v1/fonts")):
        return KEYS["admin"]
    if path == "/v1/audit_events":
        return KEYS["read_only"]
    if path.startswith("/v1/webhook_endpoints") or path.endswith("/redeliver"):
        return KEYS["admin"]
    if path.startswith(("/v1/payments", "/v1/refunds", "/v1/events")):
        return KEYS["payments"]
    return KEYS["sk"]


@schemathesis.auth(refresh_interval=None)
class VaultKeys:
    """A fixed key per operation (no token endpoint to fetch one from)."""

    def get(self, case, ctx):
        return KEYS

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = "Bearer " + key_for(case.operation.method.upper(), case.operation.path)


@schemathesis.hook
def map_headers(ctx, headers):
    op = ctx.operation
    if op is None or op.path != "/v1/tokens" or headers is None or "Origin" not in headers or not ORIGIN:
        return headers
    # Keep a generated origin now and then (the refusal path); otherwise the vault's own origin.
    if hash(str(headers.get("Origin"))) % 4 != 0:
        headers["Origin"] = ORIGIN
    return headers


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    op = ctx.operation
    if op is None or not op.path.startswith("/v1/keys/") or not path_parameters:
        return path_parameters
    key_id = path_parameters.get("id")
    if key_id in OWN_KEY_IDS and SPARE_KEY_IDS:
        path_parameters["id"] = SPARE_KEY_IDS[hash(key_id) % len(SPARE_KEY_IDS)]
    return path_parameters


@schemathesis.hook
def map_query(ctx, query):
    op = ctx.operation
    if op is None or op.path != "/v1/frame" or not query or "key" not in query:
        return query
    if hash(str(query.get("key"))) % 4 != 0:
        query["key"] = KEYS["pk"]
    return query


FRAME_FILES = [f for f in os.environ.get("VAULT_FRAME_FILES", "").split(",") if f]


@schemathesis.hook("map_path_parameters")
def frame_file(ctx, path_parameters):
    op = ctx.operation
    if op is None or op.path != "/v1/frame/{file}" or not path_parameters or not FRAME_FILES:
        return path_parameters
    name = str(path_parameters.get("file"))
    if hash(name) % 2 == 0:
        path_parameters["file"] = FRAME_FILES[hash(name) % len(FRAME_FILES)]
    return path_parameters


DIGIT_RUN = re.compile(r"\d{13,19}")


def request_card(case):
    """The card number (digits only) and CVC the request carried, if any."""
    body = case.body if isinstance(case.body, dict) else None
    card = body.get("card") if body else None
    if not isinstance(card, dict):
        return None, None
    number = card.get("number")
    digits = re.sub(r"\D", "", number) if isinstance(number, str) else ""
    cvc = card.get("cvc")
    # Only a CVC that is one (3-4 digits) is card data; "abc" or "" would match unrelated fields.
    cvc = cvc.strip() if isinstance(cvc, str) and re.fullmatch(r"\s*\d{3,4}\s*", cvc) else None
    return (digits if len(digits) >= 12 else None), cvc


def walk(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + (k,), k, v
            yield from walk(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, path + (i,))


@schemathesis.check
def no_card_data_echoed(ctx, response, case):
    """No response carries card data, except the card of a successful detokenize."""
    text = response.text or ""
    headers = "\n".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}" for k, v in response.headers.items())
    is_detokenized = case.operation.path == "/v1/tokens/{id}/detokenize" and response.status_code == 200
    number, cvc = request_card(case)
    if number and not is_detokenized:
        if number in re.sub(r"\D", "", text) and len(number) >= 12:
            # Digits-only comparison also catches `4242 4242 …` and split echoes.
            raise AssertionError("the response body echoes the request's card number")
    if number and number in re.sub(r"\D", "", headers):
        raise AssertionError("a response header echoes the request's card number")
    if is_detokenized:
        return None
    scanned = text + "\n" + headers
    for m in DIGIT_RUN.finditer(scanned):
        if luhn(m.group()):
            # Where it is (the 40 characters before it, digits hidden) and the number masked.
            before = re.sub(r"\d", "#", scanned[max(0, m.start() - 40) : m.start()])
            raise AssertionError(
                f"the response holds a Luhn-valid {len(m.group())}-digit number {mask(m.group())} after {before!r}"
            )
    if case.operation.path == "/v1/openapi.json":
        return None  # the document names the card fields it describes
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    for path, key, value in walk(data):
        if key in ("number", "cvc", "pan") and value is not None:
            raise AssertionError(f"the response has a card field {'.'.join(map(str, path))}")
        # `last4` may equal a 4-digit CVC by chance (4242 4242 4242 4242 with CVC 4242).
        if cvc and isinstance(value, str) and value.strip() == cvc and key != "last4":
            raise AssertionError(f"the response field {'.'.join(map(str, path))} equals the request's CVC")
    return None


def self_test():
    """The check must be able to fail: planted echoes are found, clean answers pass."""

    class Op:
        def __init__(self, path):
            self.path = path

    class Case:
        def __init__(self, path, body):
            self.operation, self.body = Op(path), body

    class Resp:
        def __init__(self, status, text):
            self.status_code, self.text, self.headers = status, text, {"content-type": ["application/json"]}

    body = {"card": {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030, "cvc": "737"}}
    planted = [
        ("/v1/tokens", 400, '{"error":{"message":"bad number 4242 4242 4242 4242"}}'),
        ("/v1/tokens", 201, '{"id":"tok_x","card":{"last4":"4242","number":"4242"}}'),
        ("/v1/tokens", 400, '{"error":{"param":"card.cvc","message":"737"}}'),
        ("/v1/tokens/{id}", 200, '{"note":"5555555555554444"}'),
        # A token reference in hex (as before 2026-11-27) that happens to be Luhn-valid digits.
        ("/v1/audit_events", 200, '{"data":[{"detail":{"token_ref":"tref_4242424242424242"}}]}'),
    ]
    for path, status, text in planted:
        try:
            no_card_data_echoed(None, Resp(status, text), Case(path, body))
        except AssertionError:
            continue
        raise SystemExit(f"hooks self-test: a planted echo was not found: {text}")
    clean = Resp(201, '{"id":"tok_x","card":{"brand":"visa","last4":"4242","exp_month":12,"exp_year":2030},"created":1795132800}')
    no_card_data_echoed(None, clean, Case("/v1/tokens", body))
    detok = Resp(200, '{"card":{"number":"4242424242424242","cvc":"737"}}')
    no_card_data_echoed(None, detok, Case("/v1/tokens/{id}/detokenize", None))
    print(f"hooks self-test: ok ({len(planted)} planted echoes found, 2 clean answers passed)")


if __name__ == "__main__":
    self_test()
