"""Container health check: GET $ZZHUB_HEALTH_URL answers 200 (the hub's own certificate is
not verified: this runs inside the container, against 127.0.0.1)."""

import json
import os
import ssl
import sys
import urllib.request

url = os.environ.get("ZZHUB_HEALTH_URL", "https://127.0.0.1:8443/api/health")
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
try:
    with urllib.request.urlopen(url, timeout=4, context=context) as resp:
        body = json.load(resp)
except (OSError, ValueError) as err:
    print(f"unhealthy: {err}")
    sys.exit(1)
print(f"{body.get('status')} cluster={body.get('cluster')}")
sys.exit(0 if resp.status == 200 and body.get("status") == "ok" else 1)
