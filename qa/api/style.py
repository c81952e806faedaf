"""The web form's stylesheet (a Python string, so it ships inside the package without data files)."""

CSS = """
:root { color-scheme: light dark; --accent: #1d5fd1; --muted: #6b7280; --mark: #ffe58a; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.6 system-ui, "Segoe UI", "Noto Naskh Arabic", "Noto Sans Arabic", sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
label.question { flex: 1 1 22rem; }
input { font: inherit; padding: .45rem .6rem; border: 1px solid #9ca3af; border-radius: .4rem; }
input[name="k"] { width: 5rem; }
fieldset.filters { display: flex; flex-wrap: wrap; gap: .5rem; border: 0; padding: 0; margin: 0; }
fieldset.filters legend { float: left; font-size: .85rem; color: var(--muted); margin-right: .25rem; }
button { font: inherit; padding: .45rem 1.2rem; border: 0; border-radius: .4rem; background: var(--accent);
  color: #fff; cursor: pointer; }
.message { margin: 1rem 0; padding: .6rem .8rem; border-radius: .4rem; background: #fdecec; color: #8a1c1c; }
.message.empty { background: #eef2f7; color: inherit; }
.summary { color: var(--muted); font-size: .85rem; margin: 1rem 0 .5rem; }
ol.results { list-style: none; padding: 0; margin: 0; }
.hit { border-top: 1px solid #d1d5db; padding: .8rem 0; }
.hit h2 { font-size: 1.05rem; margin: 0; }
.meta { color: var(--muted); font-size: .8rem; margin: .1rem 0 .4rem; }
.meta a { color: inherit; }
.passage { margin: 0; white-space: pre-line; }
mark { background: var(--mark); color: #111; padding: 0 .1em; border-radius: .15em; }
footer { margin-top: 2rem; color: var(--muted); font-size: .8rem; }
footer a { color: inherit; }
"""
