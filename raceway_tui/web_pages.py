"""The HTML of `raceway-tui web`: the terminal page, the login page and the pages that say
why there is no explorer (source down, too many sessions, refused). Every value put in a
page is escaped; nothing is fetched from outside the server (the font is textual-serve's
own copy, not Google's)."""

from __future__ import annotations

import json
from html import escape

_STYLE = """
  @font-face { font-family: "Roboto Mono"; font-style: normal;
    src: url("/static/fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }
  @font-face { font-family: "Roboto Mono"; font-style: italic;
    src: url("/static/fonts/RobotoMono-Italic-VariableFont_wght.ttf") format("truetype"); }
  body { background: #0c181f; color: rgba(255,255,255,0.92); font-family: "Roboto Mono", menlo, monospace; }
"""


def _page(title: str, body: str, refresh: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>{meta}
<style>{_STYLE}
  main {{ max-width: 46em; margin: 12vh auto; padding: 2em; background: #12232d; }}
  h1 {{ font-size: 1.3em; }} pre {{ white-space: pre-wrap; word-break: break-word; color: #ffb86c; }}
  input, button {{ font: inherit; padding: .5em; margin: .3em 0; }} .error {{ color: #ff6e6e; }}
</style></head><body><main>{body}</main></body></html>"""


def message_page(title: str, text: str, detail: str = "", refresh: int | None = None) -> str:
    """A page that says one thing (``detail``, e.g. an error text, shown literally)."""
    extra = f"<pre id=detail>{escape(detail)}</pre>" if detail else ""
    return _page(title, f"<h1 id=title>{escape(title)}</h1><p id=text>{escape(text)}</p>{extra}", refresh)


def login_page(error: str = "") -> str:
    note = f'<p class=error id=error>{escape(error)}</p>' if error else ""
    return _page("raceway-tui: sign in", f"""<h1>raceway-tui</h1>
<p>This explorer needs the API key it was started with.</p>{note}
<form method=post action="/login" autocomplete=off>
<label>API key <input type=password name=key id=key autofocus required></label>
<button type=submit id=submit>Open the explorer</button></form>""")


def terminal_page(title: str, ws_path: str, ended_path: str, font_size: int) -> str:
    """textual-serve's page (its textual.js and xterm.css) with the font served locally and,
    when the session ends, the reason in place of a bare "Session ended"."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<link rel="stylesheet" href="/static/css/xterm.css">
<script src="/static/js/textual.js"></script>
<style>{_STYLE}
  .dialog-container {{ position: absolute; width: 100vw; height: 100vh; display: flex; align-items: center;
    justify-content: center; z-index: 10; }}
  .shade {{ position: absolute; width: 100%; height: 100%; background: #0c181f; }}
  .intro {{ min-width: 40em; max-width: 80vw; min-height: 10em; z-index: 20; text-align: center;
    background-color: #12232d; display: flex; flex-direction: column; align-items: center;
    justify-content: center; margin: 32px; padding: 1em; }}
  .intro pre {{ text-align: left; white-space: pre-wrap; word-break: break-word; color: #ffb86c; max-height: 50vh;
    overflow: auto; }}
  body.-first-byte .intro-dialog {{ display: none; }}
  body .textual-terminal {{ opacity: 0; }}
  body.-first-byte .textual-terminal {{ opacity: 1; transition: opacity 0.3s ease-out; }}
  button {{ padding: 12px 28px; background-color: #5e0ba7; color: white; border: none; font: inherit; margin: 12px; }}
  .closed-dialog {{ display: none; }}
  body.-closed .closed-dialog {{ display: flex; }}
  #start {{ display: none; }}
</style></head>
<body>
<div class="dialog-container intro-dialog"><div class="shade"></div>
  <div class="intro"><div id="starting">Starting the explorer…</div>
  <button type="button" id="start">Start</button></div></div>
<div class="dialog-container closed-dialog"><div class="shade"></div>
  <div class="intro"><div class="message" id="ended">Session ended.</div><pre id="reason"></pre>
  <button type="button" onclick="window.location.reload()">Start a new session</button></div></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{escape(ws_path)}"
  data-font-size="{int(font_size)}"></div>
<script>
  // the websocket URL is relative to this page's origin (textual.js opens it as given)
  (function () {{
    const el = document.getElementById("terminal");
    const proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    el.dataset.sessionWebsocketUrl = proto + window.location.host + el.dataset.sessionWebsocketUrl;
    let asked = false;
    new MutationObserver(function () {{
      if (asked || !document.body.classList.contains("-closed")) return;
      asked = true;
      fetch({json.dumps(ended_path)}, {{credentials: "same-origin"}})
        .then(function (r) {{ return r.json(); }})
        .then(function (d) {{
          document.getElementById("ended").textContent = d.title || "Session ended.";
          document.getElementById("reason").textContent = d.reason || "";
        }})
        .catch(function () {{}});
    }}).observe(document.body, {{attributes: true, attributeFilter: ["class"]}});
  }})();
</script>
</body></html>"""
