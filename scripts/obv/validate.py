"""Checks one Open Badges 2.0 hosted assertion with the official validator (PyPI `openbadges`), offline.

    validate.py [--recipient EMAIL] TARGET

TARGET is an assertion URL on a loopback host, or a baked .png/.svg file. The last line printed is
`VALID` or `INVALID: reason | reason`; the exit code is 0 (valid), 1 (invalid) or 2 (this script or
its environment is broken). Run it through validate.sh, which prepares the Python environment.

The verdict is the validator's, plus the few rules of the specification that openbadges 1.1.2 does
not enforce for hosted badges: a revoked assertion (410 Gone or `"revoked": true`) is invalid, every
fetched object answers 200 with a JSON or image Content-Type, and a given recipient was really checked.
"""

import argparse
import ipaddress
import json
import logging
import os
import sys
import traceback
from urllib.parse import urlsplit

VALID, INVALID, BROKEN = 0, 1, 2


def broken(message):
    print("HARNESS ERROR: " + message)
    sys.exit(BROKEN)


try:
    import openbadges_bakery
    import requests
    from openbadges.verifier import verifier
    from openbadges.verifier.utils import CachableDocumentLoader
    from pyld import jsonld
except ImportError as exc:
    broken("the validator is not installed ({}); run scripts/obv/validate.sh --setup".format(exc))

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_SECONDS = 10

# Every JSON-LD context the validator dereferences for a plain Open Badges 2.0 badge, answered from
# files shipped beside this script; w3id.org redirects the first two to the last.
CONTEXTS = {
    "https://w3id.org/openbadges/v2": "openbadges-v2.json",
    "http://w3id.org/openbadges/v2": "openbadges-v2.json",
    "https://openbadgespec.org/v2/context.json": "openbadges-v2.json",
}


def is_loopback(url):
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# (url, status, content type, parsed JSON body or None) of every response the validator received.
RESPONSES = []
_send = requests.Session.send


def offline_send(session, request, **kwargs):
    """Only loopback hosts are reachable, within a time limit; every answer is kept for the checks below."""
    if not is_loopback(request.url):
        raise requests.ConnectionError("offline: refused to fetch {} (only loopback hosts)".format(request.url))
    kwargs["timeout"] = TIMEOUT_SECONDS
    response = _send(session, request, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = None
    RESPONSES.append((request.url, response.status_code, response.headers.get("Content-Type", ""), body))
    return response


requests.Session.send = offline_send


class ShippedContexts(CachableDocumentLoader):
    def __init__(self):
        super().__init__(use_cache=False)
        # Read up front: a missing or broken file is a broken harness, not an invalid badge.
        self.documents = {}
        for url, name in CONTEXTS.items():
            path = os.path.join(HERE, "contexts", name)
            try:
                with open(path, encoding="utf-8") as f:
                    self.documents[url] = f.read()
                json.loads(self.documents[url])
            except (OSError, ValueError) as exc:
                broken("cannot read the JSON-LD context {}: {}".format(path, exc))

    def __call__(self, url):
        document = self.documents.get(url.rstrip("/"))
        if document is None:
            return super().__call__(url)
        return {"contextUrl": None, "documentUrl": url, "document": document}


def types_of(node):
    kind = node.get("type") if isinstance(node, dict) else None
    return kind if isinstance(kind, list) else [kind]


def supplement(graph, tasks, recipient):
    reasons = []
    for url, status, ctype, body in RESPONSES:
        revoked = isinstance(body, dict) and body.get("revoked") is True
        if status == 410 or revoked:
            why = body.get("revocationReason") if isinstance(body, dict) else None
            reasons.append("assertion {} is revoked{}".format(url, ": " + why if why else ""))
            continue
        if status != 200:
            reasons.append("GET {} answered HTTP {}".format(url, status))
            continue
        media = ctype.split(";")[0].strip().lower()
        wanted = ("application/ld+json", "application/json") if body is not None else ("image/png", "image/svg+xml")
        if media not in wanted:
            reasons.append("GET {} answered Content-Type {!r}, not {}".format(url, ctype, " or ".join(wanted)))
    for node in graph:
        if "Assertion" in types_of(node) and node.get("revoked") is True:
            reasons.append("assertion {} is revoked".format(node.get("id")))
    if recipient:
        checked = [t for t in tasks if t.get("name") == "VERIFY_RECIPIENT_IDENTIFIER" and t.get("complete")]
        if not checked:
            reasons.append("the recipient {} was never checked".format(recipient))
    return list(dict.fromkeys(reasons))


def main():
    parser = argparse.ArgumentParser(prog="validate.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipient", metavar="EMAIL", help="the email the badge must have been awarded to")
    parser.add_argument("target", help="a hosted assertion URL, or a baked PNG or SVG file")
    args = parser.parse_args()
    # The validator logs a traceback for each failing task; the report carries the same error.
    logging.getLogger("openbadges.verifier").setLevel(logging.CRITICAL)

    image = None
    if urlsplit(args.target).scheme in ("http", "https"):
        badge_input = args.target
    elif os.path.isfile(args.target):
        image = open(args.target, "rb")
        # openbadges 1.1.2 crashes on an image without badge data (ValueError.message on Python 3).
        try:
            baked = openbadges_bakery.unbake(image)
        except Exception as exc:  # noqa: BLE001 - an unreadable image is an invalid badge
            baked = None
            print("bakery: {}".format(exc))
        if not baked:
            print("INVALID: no Open Badges metadata in {}".format(args.target))
            return INVALID
        print("baked: {}".format(baked[:200]))
        badge_input = image
    else:
        broken("{} is neither an http(s) URL nor a file".format(args.target))

    loader = ShippedContexts()
    jsonld.set_document_loader(loader)
    options = dict(verifier.DEFAULT_OPTIONS, use_cache=False, cache_backend=None,
                   jsonld_options={"documentLoader": loader})
    profile = {"email": args.recipient} if args.recipient else None
    try:
        store = verifier.verification_store(badge_input, profile, options=options)
        report = verifier.generate_report(store, options=options)["report"]
    finally:
        if image:
            image.close()
    state = store.get_state()

    print("subject: {} (Open Badges {})".format(report.get("validationSubject"), report.get("openBadgesVersion")))
    for node in state["graph"]:
        print("node: {} {}".format(types_of(node)[0], node.get("id")))
    for url, status, ctype, _ in RESPONSES:
        print("GET {} -> {} {}".format(url, status, ctype))
    reasons = []
    for message in report["messages"]:
        print("{}: {}: {}".format(message["messageLevel"], message["name"], message.get("result")))
        if message["messageLevel"] == "ERROR":
            reasons.append(str(message.get("result") or message["name"]))
    if not state["graph"]:
        reasons.append("no Open Badges object could be loaded")
    reasons = supplement(state["graph"], state["tasks"], args.recipient) + reasons
    if report.get("valid") and not reasons:
        print("VALID")
        return VALID
    # The validator's messages can carry whole tracebacks; the lines above keep them.
    print("INVALID: " + " | ".join(r if len(r) <= 300 else r[:300] + "..." for r in reasons))
    return INVALID


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - a crash must not read as a verdict
        traceback.print_exc(file=sys.stdout)
        broken("the validator raised an exception")
