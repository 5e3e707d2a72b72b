"""Receive Ops-Core's completion callbacks and check their signature (stdlib only).

OPSCORE_CALLBACK_SECRET=<secret> python examples/workflows/callback_receiver.py --port 9000
# then trigger with "callbackUrl": "http://127.0.0.1:9000/"
"""

import argparse
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ.get("OPSCORE_CALLBACK_SECRET") or os.environ.get("OPSCORE_WEBHOOK_SECRET", "")


def signature_ok(timestamp: str, body: bytes, signature: str, tolerance: int = 300) -> bool:
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected, signature)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ts, sig = self.headers.get("X-OpsCore-Timestamp", ""), self.headers.get("X-OpsCore-Signature", "")
        if not signature_ok(ts, body, sig):
            self.send_response(401), self.end_headers()
            return print("rejected: bad or missing signature", flush=True)
        session = json.loads(body)["session"]
        print(f"session {session['sessionId']} {session['status']}", flush=True)
        self.send_response(204), self.end_headers()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9000)
    HTTPServer(("127.0.0.1", parser.parse_args().port), Handler).serve_forever()
