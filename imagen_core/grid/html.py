"""grid.html: one self-contained page to look through a grid run.

No network: the styles and the script are inline, the record is embedded as
JSON, and images are the run's own files by relative name (the page works
from the folder, a file manager, or the gallery's ``/images/`` route). The
page lets you pick which axis runs down the rows and which across the
columns (the others become value pickers), zoom into a cell (its details,
and a link to the full image), and see each cell's time and cost.
"""

# ruff: noqa: E501  (the page's inline CSS and script keep their own line lengths)
from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagen_core.grid.record import GridRecord

_STYLE = """
:root { color-scheme: dark; --bg: #1e1e1e; --fg: #eee; --dim: #aaa; --line: #333; --bad: #ffb266; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { padding: 12px 16px; border-bottom: 1px solid var(--line); }
h1 { font-size: 16px; margin: 0 0 8px; font-weight: 600; }
.controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; }
label { color: var(--dim); }
select, button, input { background: #2a2a2a; color: var(--fg); border: 1px solid #444;
  border-radius: 4px; padding: 3px 6px; font: inherit; }
main { padding: 12px 16px; overflow: auto; }
table { border-collapse: collapse; }
th { color: var(--dim); font-weight: 500; padding: 4px 6px; text-align: center; }
th.row { text-align: right; max-width: 14em; }
th.axis { color: #8cbeff; }
td { padding: 3px; vertical-align: top; }
.cell { width: var(--tile); cursor: zoom-in; background: #2e2e2e; border: 1px solid transparent; }
.cell:hover { border-color: #8cbeff; }
.cell img { width: var(--tile); height: var(--tile); object-fit: contain; display: block; }
.cell .info { color: var(--dim); font-size: 12px; padding: 2px 4px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.failed { height: var(--tile); background: #3a2220; color: var(--bad); padding: 8px;
  font-size: 12px; overflow: hidden; }
#zoom { position: fixed; inset: 0; background: rgba(0,0,0,.88); display: none;
  align-items: center; justify-content: center; gap: 20px; padding: 20px; }
#zoom.open { display: flex; }
#zoom img { width: min(75vw, 92vh); height: min(75vw, 92vh); object-fit: contain;
  image-rendering: auto; }
#zoom dl { max-width: 22vw; overflow-wrap: anywhere; }
#zoom dt { color: var(--dim); } #zoom dd { margin: 0 0 6px; }
a { color: #8cbeff; }
img.input { height: 48px; vertical-align: middle; border: 1px solid #444; }
"""

_SCRIPT = """
const grid = JSON.parse(document.getElementById('grid-data').textContent);
const axes = grid.axes;
const state = { rows: axes.length > 1 ? 1 : -1, cols: 0, fixed: axes.map(() => 0), tile: 220 };
const $ = (id) => document.getElementById(id);
const el = (tag, attrs, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const kid of kids) node.append(kid);
  return node;
};
const usd = (v) => '$' + v.toFixed(4).replace(/0+$/, '').replace(/\\.$/, '');
const money = (c) => c.cost_usd == null ? 'cost unknown' : (c.cost_usd === 0 ? 'free' : usd(c.cost_usd));
const info = (c) => c.status === 'ok'
  ? [c.backend, c.latency_s == null ? null : c.latency_s.toFixed(2) + ' s', money(c)].filter(Boolean).join(' · ')
  : c.backend + ' · ' + c.status;
function position(cell) { return axes.map((a) => cell[a.role]); }
function find(want) {
  return grid.cells.find((c) => position(c).every((p, i) => p === want[i]));
}
function controls() {
  const box = $('controls');
  box.textContent = '';
  const pick = (name, value, onchange, allowNone) => {
    const select = el('select', { id: name });
    if (allowNone) select.append(el('option', { value: -1 }, '(one row)'));
    axes.forEach((a, i) => select.append(el('option', { value: i }, a.name)));
    select.value = value;
    select.onchange = () => onchange(Number(select.value));
    return select;
  };
  box.append(el('label', { for: 'cols' }, 'columns'), pick('cols', state.cols, (v) => {
    if (v === state.rows) state.rows = state.cols;
    state.cols = v; render();
  }, false));
  box.append(el('label', { for: 'rows' }, 'rows'), pick('rows', state.rows, (v) => {
    if (v === state.cols) {  // swap; with one row before, columns take another axis
      const other = axes.findIndex((_, i) => i !== v);
      if (state.rows >= 0) state.cols = state.rows;
      else if (other >= 0) state.cols = other;
      else v = -1;  // one axis: it stays the columns
    }
    state.rows = v; render();
  }, true));
  axes.forEach((a, i) => {
    if (i === state.rows || i === state.cols) return;
    const select = el('select', { id: 'fix-' + a.role });
    a.labels.forEach((label, j) => select.append(el('option', { value: j }, label)));
    select.value = state.fixed[i];
    select.onchange = () => { state.fixed[i] = Number(select.value); render(); };
    box.append(el('label', { for: 'fix-' + a.role }, a.name), select);
  });
  const size = el('input', { type: 'range', min: 96, max: 512, value: state.tile, id: 'tile' });
  size.oninput = () => { state.tile = Number(size.value); document.body.style.setProperty('--tile', state.tile + 'px'); };
  box.append(el('label', { for: 'tile' }, 'size'), size);
  document.body.style.setProperty('--tile', state.tile + 'px');
}
function render() {
  controls();
  const table = el('table');
  const cols = axes[state.cols];
  const rows = state.rows >= 0 ? axes[state.rows] : null;
  const head = el('tr', {}, el('th', { class: 'axis row' }, rows ? rows.name + ' \\u2193 / ' + cols.name + ' \\u2192' : cols.name + ' \\u2192'));
  cols.labels.forEach((label) => head.append(el('th', {}, label)));
  table.append(head);
  (rows ? rows.labels : ['']).forEach((rowLabel, r) => {
    const tr = el('tr', {}, el('th', { class: 'row' }, rowLabel));
    cols.labels.forEach((_, c) => {
      const want = state.fixed.slice();
      want[state.cols] = c;
      if (rows) want[state.rows] = r;
      const cell = find(want);
      const td = el('td');
      if (cell) {
        const box = el('div', { class: 'cell', tabindex: 0, title: Object.entries(cell.values).map(([k, v]) => k + '=' + v).join(', ') });
        box.append(cell.image ? el('img', { src: cell.image, alt: info(cell), loading: 'lazy' })
                              : el('div', { class: 'failed' }, 'failed: ' + (cell.error || 'no image')));
        box.append(el('div', { class: 'info' }, info(cell)));
        box.onclick = () => zoom(cell);
        box.onkeydown = (e) => { if (e.key === 'Enter') zoom(cell); };
        td.append(box);
      }
      tr.append(td);
    });
    table.append(tr);
  });
  const main = $('cells');
  main.textContent = '';
  main.append(table);
}
function zoom(cell) {
  const box = $('zoom');
  box.textContent = '';
  if (cell.image) box.append(el('img', { src: cell.image, alt: info(cell) }));
  const dl = el('dl');
  const add = (k, v) => { if (v != null && v !== '') dl.append(el('dt', {}, k), el('dd', {}, String(v))); };
  Object.entries(cell.values).forEach(([k, v]) => add(k, v));
  if (!('backend' in cell.values)) add('backend', cell.backend);
  add('model', cell.model);
  if (!('seed' in cell.values)) add('seed', cell.seed);
  add('time', cell.latency_s == null ? null : cell.latency_s.toFixed(2) + ' s');
  add('cost', cell.status === 'ok' ? money(cell) : null);
  add('estimate', cell.estimate_usd == null ? null : usd(cell.estimate_usd));
  add('error', cell.error);
  if (cell.image) dl.append(el('dd', {}, el('a', { href: cell.image, target: '_blank' }, 'open the full image')));
  if (cell.sidecar) dl.append(el('dd', {}, el('a', { href: cell.sidecar, target: '_blank' }, 'sidecar')));
  box.append(dl);
  box.classList.add('open');
}
$('zoom').onclick = (e) => { if (e.target.tagName !== 'A') $('zoom').classList.remove('open'); };
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') $('zoom').classList.remove('open'); });
render();
"""


def page(record: GridRecord, sheets: Sequence[str]) -> str:
    """The page for ``record``; ``sheets`` are linked from its header."""
    from imagen_core.grid.record import as_dict

    data = as_dict(record)
    # Inside <script>: no "</script>" may appear, so "<" is escaped in the JSON.
    embedded = json.dumps(data, default=str).replace("<", "\\u003c")
    totals = record.totals()
    summary = f"{totals['ok']} of {totals['cells']} cells"
    if totals["cost_usd"]:
        summary += f" · ${totals['cost_usd']:.4f}"
    given = ""
    if record.input_image:
        name = html.escape(record.input_image, quote=True)
        given = (
            f' · input: <a href="{name}"><img class="input" src="{name}" alt="the input image"></a>'
        )
    links = " ".join(
        f'<a href="{html.escape(name, quote=True)}">{html.escape(name)}</a>' for name in sheets
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>grid: {html.escape(record.prompt)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<header><h1>{html.escape(record.prompt)}</h1>"
        f'<p><span class="summary">{html.escape(summary)}</span> · sheets: {links}{given}</p>'
        '<div class="controls" id="controls"></div></header>'
        '<main id="cells"></main><div id="zoom"></div>'
        f'<script type="application/json" id="grid-data">{embedded}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
