#!/usr/bin/env python3
"""Does Chromium's autofill fill card fields split over several same-origin iframes at once,
with site isolation ON (each cross-site iframe in its own process)? docs/split-fields.md.

The browser test `split_fields_autofill_fills_every_field_frame_at_once` drives the real card
frames through chromedriver, whose DevTools commands reach the top page only, so it renders the
frames in the page's process (`--disable-site-isolation-trials`). This probe removes that
caveat: it talks to Chromium's DevTools directly (a minimal WebSocket client, standard library
only), attaches to each out-of-process frame, and calls `Autofill.trigger` on the number input.

Page: http://127.0.0.1:P1/ with three iframes from http://localhost:P2 (another site), each with
one input like a split field frame (`cc-number`, `cc-exp`, `cc-csc`). Exit status 0 when all
three were filled by the one trigger. Usage: python3 scripts/autofill-probe.py [--mixed-origins]
(the control: the expiry frame from a third origin, which Chromium must leave empty; exit 1).
"""
import base64, http.server, json, os, socket, struct, subprocess, sys, tempfile, threading, time
import urllib.request

FIELDS = [("number", "cc-number"), ("expiry", "cc-exp"), ("cvc", "cc-csc")]


def serve(pages):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split("?")[0].split("#")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main():
    pages = {f"/{f}.html": f'<!doctype html><form><label for="{f}">{f}</label>'
             f'<input id="{f}" autocomplete="{a}"></form>' for f, a in FIELDS}
    field_port = serve(pages)
    # --mixed-origins: the expiry frame from another origin than the number frame (a control:
    # Chromium must then leave it empty, sensitive card data does not cross origins).
    other_port = serve(pages) if "--mixed-origins" in sys.argv else field_port
    page_port = serve({"/": "<!doctype html><form>" + "".join(
        f'<iframe src="http://localhost:{other_port if f == "expiry" else field_port}/{f}.html"></iframe>'
        for f, _ in FIELDS) + "</form>"})
    port = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chromium = subprocess.Popen(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--remote-debugging-port={port}", "--user-data-dir=" + tempfile.mkdtemp(), "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return probe(port, f"http://127.0.0.1:{page_port}/")
    finally:
        chromium.kill()


def probe(port, url):
    for _ in range(100):
        try:
            version = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/version").read())
            break
        except OSError:
            time.sleep(0.1)
    cdp = Cdp(port, version["webSocketDebuggerUrl"])
    page = next(t for t in cdp.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
    ps = cdp.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
    cdp.call("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True}, ps)
    cdp.call("Page.navigate", {"url": url}, ps)
    time.sleep(3)
    cdp.call("Runtime.evaluate", {"expression": "1"}, ps)  # reads the events that arrived meanwhile
    frames = [e["params"] for e in cdp.events if e.get("method") == "Target.attachedToTarget"
              and e["params"]["targetInfo"]["type"] == "iframe"]
    print(f"{len(frames)} out-of-process frames")
    anchor = None
    for f in frames:
        root = cdp.call("DOM.getDocument", {"depth": -1, "pierce": True}, f["sessionId"])["root"]
        node = find(root, "number")
        if node:
            anchor = (f["targetInfo"]["targetId"], node)
    if not anchor:
        print("no number input in an out-of-process frame")
        return 1
    card = {"number": "4242424242424242", "name": "Jane Doe", "expiryMonth": "12", "expiryYear": "2030", "cvc": "737"}
    cdp.call("Autofill.trigger", {"fieldId": anchor[1], "frameId": anchor[0], "card": card}, ps)
    time.sleep(1.5)
    filled = []
    for f in frames:
        value = cdp.call("Runtime.evaluate", {"expression": "JSON.stringify([...document.querySelectorAll('input')].map(i => [i.id, i.value]))",
                                              "returnByValue": True}, f["sessionId"])["result"]["value"]
        filled += [v for v in json.loads(value) if v[1]]
    print("filled:", filled)
    return 0 if sorted(v[0] for v in filled) == sorted(f for f, _ in FIELDS) else 1


def find(node, element_id):
    attrs = node.get("attributes", [])
    if node.get("nodeName") == "INPUT" and element_id in attrs[1::2] and attrs[attrs.index("id") + 1] == element_id:
        return node["backendNodeId"]
    for child in node.get("children", []) + ([node["contentDocument"]] if "contentDocument" in node else []):
        found = find(child, element_id)
        if found:
            return found
    return None


class Cdp:
    """A DevTools Protocol client over one WebSocket (text frames, client-masked)."""

    def __init__(self, port, ws_url):
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        path = ws_url.split(str(port), 1)[1]
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        self.buf = self.buf.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0
        self.events = []

    def _send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + struct.pack(">H", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)

    def _recv(self):
        self._need(2)
        n, off = self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        data, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return json.loads(data)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        while True:
            reply = self._recv()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)


if __name__ == "__main__":
    sys.exit(main())
