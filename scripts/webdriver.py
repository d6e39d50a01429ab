#!/usr/bin/env python3
"""Loads a page in headless Chromium through chromedriver (the W3C WebDriver protocol, standard
library only), waits for the page's `wgpu-conv web:` line, prints it, and optionally saves a
screenshot. Exits 0 only when the line says every check passed.

usage: webdriver.py URL [--screenshot FILE] [--timeout SECONDS]
"""
import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

FLAGS = ["--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-gpu-sandbox",
         "--window-size=1000,1500"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"{}").get("value")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--screenshot")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    port = free_port()
    driver = subprocess.Popen([os.environ.get("CHROMEDRIVER", "chromedriver"), f"--port={port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                call(base, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": FLAGS}}}}
        session = call(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        try:
            call(base, "POST", s + "/url", {"url": a.url})
            script = ("const s = document.getElementById('status');"
                      "return [s ? s.textContent : '', document.body.dataset.drawn || ''];")
            line, drawn = "", ""
            deadline = time.time() + a.timeout
            while time.time() < deadline:
                line, drawn = call(base, "POST", s + "/execute/sync", {"script": script, "args": []})
                if line.startswith("wgpu-conv web:") and (drawn or "FAILED" in line):
                    break
                time.sleep(0.5)
            print(line or "wgpu-conv web: FAILED the page printed no result line in time")
            if a.screenshot:
                png = call(base, "GET", s + "/screenshot")
                with open(a.screenshot, "wb") as f:
                    f.write(base64.b64decode(png))
                print(f"screenshot: {a.screenshot}")
            ok = line.startswith("wgpu-conv web: all ") and "FAILED" not in line
            return 0 if ok else 1
        finally:
            call(base, "DELETE", s)
    finally:
        driver.terminate()


if __name__ == "__main__":
    sys.exit(main())
