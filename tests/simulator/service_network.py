"""The cluster's Service network for a process the tests run in a pod's stead: an HTTP forward
proxy (the process gets it as ``HTTP_PROXY``) that sends ``http://<service>.<namespace>.svc:<port>``
to the local server standing in for that Service's pods, as cluster DNS and kube-proxy would.
Unknown hosts get 502, as a Service without endpoints refuses."""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceNetwork:
    def __init__(self) -> None:
        self.routes: dict[str, int] = {}  # "name.namespace.svc:port" -> local port
        network = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                port = network.routes.get(url.netloc)
                if port is None:
                    self.send_error(502, f"no endpoints for {url.netloc}")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                target = f"http://127.0.0.1:{port}{url.path}" + (f"?{url.query}" if url.query else "")
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")
                }
                request = urllib.request.Request(target, data=body, headers=headers, method=self.command)
                try:
                    with DIRECT.open(request, timeout=120) as answer:
                        status, payload, kind = (
                            answer.status,
                            answer.read(),
                            answer.headers.get("Content-Type"),
                        )
                except urllib.error.HTTPError as error:
                    status, payload, kind = error.code, error.read(), error.headers.get("Content-Type")
                except OSError as error:
                    self.send_error(502, str(error))
                    return
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _forward
            do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, service: str, namespace: str, port: int, service_port: int = 8000) -> None:
        self.routes[f"{service}.{namespace}.svc:{service_port}"] = port

    def start(self) -> ServiceNetwork:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
