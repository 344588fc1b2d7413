"""Parses an HTML page with mf2py, as a Webmention receiver would, and prints the result.

    python scripts/mf2/parse.py URL < page.html

URL is the page's address, against which relative URLs are resolved. Nothing is fetched.
"""
import json
import sys

import mf2py

print(json.dumps(mf2py.parse(doc=sys.stdin.read(), url=sys.argv[1], html_parser="html5lib")))
