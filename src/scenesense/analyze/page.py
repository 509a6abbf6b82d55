"""The page of an analysis (``index.html``): the recording's player beside a clickable timeline.

One self-contained HTML file: inline CSS and JavaScript, the analysis's JSON embedded (what
``timeline.json`` holds, plus the class colours), nothing fetched from elsewhere. It shows an
``<audio>`` or ``<video>`` element playing the recording (``src`` relative to the page, or any
URL given), a strip of the whole recording with one block per segment in its label's colour, and
the list of segments (time span, label, transcript, top probabilities). Clicking a block or a
segment (or pressing Enter on it) sets the player's ``currentTime`` to the segment's start and
plays; while it plays, the segment under way is highlighted.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from scenesense.analyze.timeline import NO_PREDICTION_COLOR, Analysis, label_colors
from scenesense.utils.io import atomic_write_text

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
 background:#f6f6f7}
header{padding:14px 22px;background:#fff;border-bottom:1px solid #e3e3e6}
h1{font-size:19px;margin:0 0 2px}
.meta{color:#5f6368;margin:0;font-size:13px}
main{display:grid;grid-template-columns:minmax(280px,44%) 1fr;gap:18px;padding:18px 22px;align-items:start}
@media (max-width:820px){main{grid-template-columns:1fr}}
.player{position:sticky;top:12px;background:#fff;border:1px solid #e3e3e6;border-radius:10px;
 padding:12px}
.player video{width:100%;max-height:60vh;background:#000;border-radius:6px}
.player audio{width:100%}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;margin-top:10px;font-size:13px}
.legend span{display:inline-flex;align-items:center;gap:5px}
.swatch{width:12px;height:12px;border-radius:3px;display:inline-block}
.strip{position:relative;height:34px;margin-top:12px;background:#ececef;border-radius:5px;overflow:hidden}
.block{position:absolute;top:0;bottom:0;min-width:2px;cursor:pointer;opacity:.9}
.block:hover,.block.current{opacity:1;outline:2px solid #1d1d1f;z-index:1}
.cursor{position:absolute;top:0;bottom:0;width:2px;background:#1d1d1f;pointer-events:none;left:0}
.timeline{background:#fff;border:1px solid #e3e3e6;border-radius:10px;padding:6px 0;
 max-height:calc(100vh - 120px);overflow:auto}
.segments{list-style:none;margin:0;padding:0}
.segment{display:grid;grid-template-columns:112px 1fr;gap:2px 12px;padding:8px 14px;
 border-left:5px solid transparent;cursor:pointer;border-bottom:1px solid #f0f0f2}
.segment:hover{background:#f7f7fb}
.segment.current{background:#eef4ff}
.segment:focus{outline:2px solid #4a7dff;outline-offset:-2px}
.time{font-variant-numeric:tabular-nums;color:#5f6368;font-size:13px}
.label{font-weight:600}
.transcript{grid-column:2;color:#303134}
.probs{grid-column:2;color:#5f6368;font-size:12px}
.error{grid-column:2;color:#a50e0e;font-size:12px}
.empty{padding:14px;color:#5f6368}
"""

_JS = """
(function(){
  var data = JSON.parse(document.getElementById('analysis-data').textContent);
  var player = document.getElementById('player');
  var colors = data.colors, none = data.no_prediction_color;
  var total = Math.max(data.duration || 0, 1e-3);
  function clock(s){
    var m = Math.floor(s / 60), sec = (s - 60 * m).toFixed(1), h = Math.floor(m / 60);
    if (sec.length < 4) sec = '0' + sec;
    if (h) { m = m - 60 * h; return h + ':' + (m < 10 ? '0' : '') + m + ':' + sec; }
    return m + ':' + sec;
  }
  function seek(k){
    player.currentTime = data.segments[k].start;
    var playing = player.play();
    if (playing && playing.catch) playing.catch(function(){});
    mark(k);
  }
  function said(s){
    if (!s.ok) return 'no prediction';
    if (data.task === 'regression') return s.value.toFixed(3);
    return s.label;
  }
  var legend = document.getElementById('legend');
  (data.task === 'regression' ? [] : data.label_names).forEach(function(name){
    var item = document.createElement('span'), sw = document.createElement('i');
    sw.className = 'swatch'; sw.style.background = colors[name];
    item.appendChild(sw); item.appendChild(document.createTextNode(name));
    legend.appendChild(item);
  });
  var strip = document.getElementById('strip'), list = document.getElementById('segments');
  var blocks = [], rows = [];
  data.segments.forEach(function(s, k){
    var colour = s.ok && s.label ? (colors[s.label] || none) : none;
    var block = document.createElement('div');
    block.className = 'block'; block.dataset.index = k;
    block.style.left = (100 * s.start / total) + '%';
    block.style.width = (100 * (s.end - s.start) / total) + '%';
    block.style.background = colour;
    block.title = clock(s.start) + '-' + clock(s.end) + ' ' + said(s)
      + (s.transcript ? ': ' + s.transcript : '');
    block.addEventListener('click', function(){ seek(k); });
    strip.appendChild(block); blocks.push(block);
    var row = document.createElement('li');
    row.className = 'segment'; row.tabIndex = 0;
    row.dataset.index = k; row.dataset.start = s.start;
    row.style.borderLeftColor = colour;
    var time = document.createElement('span'); time.className = 'time';
    time.textContent = clock(s.start) + '-' + clock(s.end);
    var label = document.createElement('span'); label.className = 'label'; label.textContent = said(s);
    label.style.color = s.ok && s.label ? colour : '#5f6368';
    row.appendChild(time); row.appendChild(label);
    if (s.transcript) {
      var text = document.createElement('span'); text.className = 'transcript';
      text.textContent = s.transcript; row.appendChild(text);
    }
    if (s.ok && data.task !== 'regression') {
      var top = Object.keys(s.probabilities).sort(function(a, b){
        return s.probabilities[b] - s.probabilities[a];
      });
      var probs = document.createElement('span'); probs.className = 'probs';
      probs.textContent = top.slice(0, 3).map(function(n){
        return n + ' ' + s.probabilities[n].toFixed(2);
      }).join(' \\u00b7 ');
      row.appendChild(probs);
    } else if (!s.ok) {
      var err = document.createElement('span'); err.className = 'error'; err.textContent = s.error;
      row.appendChild(err);
    }
    row.addEventListener('click', function(){ seek(k); });
    row.addEventListener('keydown', function(e){ if (e.key === 'Enter') { seek(k); } });
    list.appendChild(row); rows.push(row);
  });
  if (!data.segments.length) {
    var empty = document.createElement('li'); empty.className = 'empty';
    empty.textContent = 'No segment: no speech was found in the recording.';
    list.appendChild(empty);
  }
  var cursor = document.createElement('div'); cursor.className = 'cursor'; strip.appendChild(cursor);
  var current = -1;
  function mark(k){
    if (k === current) return;
    if (current >= 0) {
      rows[current].classList.remove('current');
      blocks[current].classList.remove('current');
    }
    current = k;
    if (k >= 0) {
      rows[k].classList.add('current'); blocks[k].classList.add('current');
      if (!player.paused) rows[k].scrollIntoView({block: 'nearest'});
    }
  }
  player.addEventListener('timeupdate', function(){
    var t = player.currentTime, found = -1;
    cursor.style.left = (100 * Math.min(t / total, 1)) + '%';
    for (var k = 0; k < data.segments.length; k++) {
      if (data.segments[k].start <= t && t < data.segments[k].end) { found = k; break; }
    }
    mark(found);
  });
})();
"""


def _json_for_script(value: Any) -> str:  # noqa: ANN401
    """JSON safe inside a ``<script>`` element (no ``</`` or ``<!--`` can end or comment it)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(analysis: Analysis, media_src: str, *, is_video: bool) -> str:
    """The page as HTML text.

    Args:
        analysis: the analysis shown.
        media_src: the player's ``src``: a URL, or a path relative to the page (URL-quoted).
        is_video: a ``<video>`` player (else ``<audio>``).
    """
    data = {**analysis.to_json(), "colors": label_colors(analysis.label_names),
            "no_prediction_color": NO_PREDICTION_COLOR, "media_name": analysis.media.name}
    tag = "video" if is_video else "audio"
    name = html.escape(analysis.media.name)
    minutes, seconds = divmod(analysis.duration, 60)
    meta = (f"run {html.escape(analysis.run_dir.name)} &middot; {int(minutes)}:{seconds:04.1f} &middot; "
            f"{len(analysis.segments)} segments, {analysis.n_ok} predicted")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}: emotions over time</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{name}</h1><p class="meta">{meta}</p></header>
<main>
<section class="player" aria-label="recording">
<{tag} id="player" controls preload="metadata" src="{html.escape(media_src, quote=True)}"></{tag}>
<div id="legend" class="legend"></div>
<div id="strip" class="strip" aria-label="segments over time"></div>
</section>
<section class="timeline" aria-label="segments">
<ol id="segments" class="segments"></ol>
</section>
</main>
<script type="application/json" id="analysis-data">{_json_for_script(data)}</script>
<script>{_JS}</script>
</body>
</html>
"""


def write_page(analysis: Analysis, path: str | Path, media_src: str, *, is_video: bool) -> Path:
    """Write `render_page` to ``path``, atomically; returns ``path``."""
    return atomic_write_text(path, render_page(analysis, media_src, is_video=is_video))
