// dashboard.js - polls /stats and /leaks to draw RSS, the top sites' live bytes and RSS explained live; shows /capture diffs with the leak /leaks found; no libraries.
'use strict';

(function () {
  // ------------------------------------------------------------ settings
  const POLL_MS = 500;          // /stats about twice a second
  const MAX_BACKOFF_MS = 5000;  // longest wait between tries while the server is unreachable
  const FETCH_TIMEOUT_MS = 3000;
  const CAPTURE_TIMEOUT_MS = 15000;
  const MAX_POINTS = 2000;      // per series; past it every other point is dropped
  const CAPTURE_TOP = 8;        // rows of the table, reused
  const LEAKS_EVERY = 1;         // /leaks with every /stats poll: the sites keep up with the RSS line
  const LEAKS_TOP = 5;           // sites stacked under the RSS line
  const LEAKS_POINTS = 200;      // points per site series
  // This page's own /capture baseline (kept across reloads), so it never
  // moves the one plain `curl /capture` uses.
  const BASELINE = (() => {
    const key = 'leaklab-baseline';
    let name = null;
    try { name = localStorage.getItem(key); } catch (e) { /* storage off: a name per load */ }
    if (!name || !/^[A-Za-z0-9._-]{1,32}$/.test(name)) {
      name = 'page-' + Math.random().toString(16).slice(2, 10);
      try { localStorage.setItem(key, name); } catch (e) { /* fine */ }
    }
    return name;
  })();

  // ------------------------------------------------------------ state
  const st = {
    series: [],       // current run: {x: requests, y: RSS in MiB}
    previous: null,   // the series before the last restart, drawn dashed
    last: null,       // last /stats object
    failures: 0,      // consecutive failed polls
    baselineDone: false,
    capturing: false,
    restarts: 0,
    leaks: null,      // last /leaks JSON (suspects with their series, rss)
    polls: 0,
  };

  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ------------------------------------------------------------ formatting
  // Sizes the way tracemalloc (and our /capture text) prints them.
  function fmtSize(size, signed) {
    const sign = signed && size >= 0 ? '+' : '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    for (const u of units) {
      if (Math.abs(size) < 100 && u !== 'B') return sign + size.toFixed(1) + ' ' + u;
      if (Math.abs(size) < 10 * 1024 || u === 'TiB') return sign + size.toFixed(0) + ' ' + u;
      size /= 1024;
    }
    return String(size);
  }
  const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
  const fmtSigned = (n) => (n >= 0 ? '+' : '') + fmtInt(n);
  function fmtUptime(s) {
    s = Math.floor(s);
    if (s < 60) return s + ' s';
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const two = (v) => String(v).padStart(2, '0');
    return h > 0 ? h + ' h ' + two(m) + ' m' : m + ' m ' + two(sec) + ' s';
  }
  const clock = () => new Date().toLocaleTimeString('en-GB');

  // ------------------------------------------------------------ fetching
  async function fetchWithTimeout(path, ms) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ms);
    try {
      return await fetch(path, { cache: 'no-store', signal: ctl.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------ status line
  function setState(state, text) {
    document.body.dataset.state = state;
    const el = $('status');
    el.className = 'status ' + state;
    el.textContent = text;
  }

  // ------------------------------------------------------------ /stats polling
  function addPoint(s) {
    const p = { x: s.requests, y: s.rss_kb / 1024 };
    const last = st.series[st.series.length - 1];
    if (last && last.x === p.x) {
      last.y = p.y;           // no new request: the newest RSS replaces the old one
      return;
    }
    st.series.push(p);
    if (st.series.length > MAX_POINTS) {
      const n = st.series.length;
      st.series = st.series.filter((_, i) => i % 2 === 0 || i === n - 1);
    }
  }

  function onStats(s) {
    const prev = st.last;
    if (prev && (s.uptime_s < prev.uptime_s || s.requests < prev.requests)) {
      // The server restarted: keep the old curve dashed, start a new one,
      // and take a new baseline (the new process has no capture yet).
      st.restarts++;
      st.previous = st.series.length > 1 ? st.series : st.previous;
      st.series = [];
      st.baselineDone = false;
      st.leaks = null;        // its sites too
      clearCapture();         // its rows were about the old process
    }
    st.last = s;
    addPoint(s);

    $('rss').textContent = fmtSize(s.rss_kb * 1024);
    $('requests').textContent = fmtInt(s.requests);
    $('leaked').textContent = fmtSize(s.leaked_bytes);
    $('uptime').textContent = fmtUptime(s.uptime_s);
    $('mode').textContent = s.mode;
    $('mode-sub').textContent = 'tracker ' + (s.tracker ? 'on' : 'off') + 
      (s.leak && s.leak !== 'drop' && s.leak !== 'none' ? ', leak=' + s.leak : ''); // the default needs no word
    const pct = s.leak_cap_bytes > 0 ? (100 * s.leaked_bytes / s.leak_cap_bytes) : 0;
    $('leaked-sub').textContent = s.mode === 'leaky'
      ? fmtInt(s.leaked_blocks) + ' blocks, cap ' + pct.toFixed(0) + '%'
      : 'fixed: nothing kept';

    if (s.mode === 'leaky' && s.capped > 0)
      setState('capped', 'leak cap reached: / answers 503 (' + fmtInt(s.capped) + ' refused)');
    else
      setState('live', st.restarts > 0 ? 'live (restarted)' : 'live');

    if (!s.tracker) {
      $('capture').disabled = true;
      setNote('the tracker is off (--no-tracker): no captures', true);
    } else if (!st.baselineDone && !st.capturing) {
      takeCapture(true);
    }
    drawRssBar(s.rss);
    drawChart();
    if (s.tracker && st.polls++ % LEAKS_EVERY === 0) refreshLeaks();
  }

  // ------------------------------------------------------------ /leaks
  // The suspects, ranked by the server from its per-site history; the page
  // never decides itself which site leaks.
  async function refreshLeaks() {
    try {
      const r = await fetchWithTimeout('/leaks?format=json&top=' + LEAKS_TOP + '&points=' + LEAKS_POINTS,
                                       FETCH_TIMEOUT_MS);
      if (!r.ok) return;
      st.leaks = await r.json();
      drawChart();
    } catch (e) { /* the /stats poll reports an unreachable server */ }
  }
  const topLeak = () => st.leaks && (st.leaks.suspects || []).find((x) => x.kind === 'leak') || null;

  // ------------------------------------------------------------ RSS explained (a bar)
  const RSS_PARTS = [
    ['tracked_live', 'tracked heap'], ['heap_untracked', 'untracked heap'], ['heap_free', 'free in malloc'],
    ['history', 'history'], ['bookkeeping', 'tracker'], ['code_and_files', 'code and files'],
    ['thread_stacks', 'stacks'], ['unexplained', 'unexplained'],
  ];
  function drawRssBar(rss) {
    const bar = $('rss-bar'), legend = $('rss-legend');
    if (!rss || !(rss.vm_rss > 0)) { bar.replaceChildren(); legend.textContent = 'no breakdown'; return; }
    const segs = [], keys = [];
    for (const [k, label] of RSS_PARTS) {
      const v = rss[k] || 0;
      if (v <= 0) continue;
      const d = document.createElement('div');
      d.className = 'seg ' + k;
      d.dataset.part = k;
      d.dataset.bytes = String(v);
      d.style.flexGrow = String(v);
      d.title = label + ' ' + fmtSize(v);
      if (v / rss.vm_rss > 0.08) d.textContent = label + ' ' + fmtSize(v);
      segs.push(d);
      const li = document.createElement('span');
      li.className = 'key ' + k;
      li.textContent = label + ' ' + fmtSize(v);
      keys.push(li);
    }
    bar.replaceChildren(...segs);
    bar.dataset.vmRss = String(rss.vm_rss);
    bar.dataset.unexplainedPct = String(rss.unexplained_pct);
    legend.replaceChildren(...keys);
    $('rss-title-sum').textContent = 'VmRSS ' + fmtSize(rss.vm_rss) + ', unexplained ' +
      fmtSize(rss.unexplained, true) + ' (' + rss.unexplained_pct.toFixed(2) + '%)';
  }

  async function poll() {
    let delay = POLL_MS;
    try {
      const r = await fetchWithTimeout('/stats', FETCH_TIMEOUT_MS);
      if (!r.ok) throw new Error('HTTP ' + r.status);
      onStats(await r.json());
      st.failures = 0;
    } catch (e) {
      st.failures++;
      delay = Math.min(MAX_BACKOFF_MS, POLL_MS * Math.pow(2, st.failures));
      setState('unreachable', 'server unreachable, retrying\u2026 (in ' +
               (delay / 1000).toFixed(1) + ' s)');
    }
    setTimeout(poll, delay);
  }

  // ------------------------------------------------------------ chart (plain SVG)
  const W = 1200, H = 400, L = 110, R = 40, T = 45, B = 85;

  // About n round tick values from 0 to at least max.
  function ticks(max, n) {
    if (!(max > 0)) max = 1;
    const raw = max / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
    const out = [];
    for (let v = 0; v <= max + step * 0.999 && out.length < 20; v += step) out.push(v);
    return out;
  }

  function el(name, attrs, text) {
    const e = document.createElementNS(SVG_NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // The top sites' live bytes, stacked, in MiB like the RSS line
  // over the requests axis: [{site, kind, pts: [{x, y0, y1}]}], bottom first.
  function stackedSites() {
    const sus = (st.leaks && st.leaks.suspects || []).filter((x) => (x.series || []).length > 1);
    const xs = [...new Set(sus.flatMap((x) => x.series.map((p) => p[0])))].sort((a, b) => a - b);
    const base = new Map(xs.map((x) => [x, 0]));
    return sus.map((x) => {
      const at = new Map(x.series.map((p) => [p[0], p[1] / 1048576]));
      let last = 0;
      const pts = xs.map((rx) => {
        if (at.has(rx)) last = at.get(rx);
        const y0 = base.get(rx), y1 = y0 + last;
        base.set(rx, y1);
        return { x: rx, y0, y1 };
      });
      return { site: x.site, kind: x.kind, pts };
    });
  }

  function drawChart() {
    const svg = $('chart');
    const all = st.series.concat(st.previous || []);
    const stacks = stackedSites();
    const top = stacks.length ? stacks[stacks.length - 1].pts : [];
    const xt = ticks(Math.max(10, ...all.map((p) => p.x), ...top.map((p) => p.x)), 8);
    const yt = ticks(Math.max(10, ...all.map((p) => p.y), ...top.map((p) => p.y1)), 5);
    const xmax = xt[xt.length - 1], ymax = yt[yt.length - 1];
    const sx = (x) => L + (x / xmax) * (W - L - R);
    const sy = (y) => H - B - (y / ymax) * (H - T - B);
    const kids = [];

    for (const v of yt) {
      kids.push(el('line', { class: 'grid', x1: L, x2: W - R, y1: sy(v), y2: sy(v) }));
      kids.push(el('text', { class: 'tick', x: L - 12, y: sy(v) + 7, 'text-anchor': 'end' }, fmtInt(v)));
    }
    for (const v of xt) {
      kids.push(el('line', { class: 'grid', x1: sx(v), x2: sx(v), y1: T, y2: H - B }));
      kids.push(el('text', { class: 'tick', x: sx(v), y: H - B + 32, 'text-anchor': 'middle' },
                   fmtInt(v)));
    }
    kids.push(el('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
    kids.push(el('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
    kids.push(el('text', { class: 'axis-title', x: (L + W - R) / 2, y: H - 12, 'text-anchor': 'middle' },
                 'requests served'));
    kids.push(el('text', { class: 'axis-title', x: 26, y: (T + H - B) / 2, 'text-anchor': 'middle',
                           transform: 'rotate(-90 26 ' + (T + H - B) / 2 + ')' }, 'RSS (MiB)'));

    const pts = (series) => series.map((p) => sx(p.x).toFixed(1) + ',' + sy(p.y).toFixed(1)).join(' ');
    const leak = topLeak();
    stacks.forEach((a, i) => {
      const up = a.pts.map((p) => sx(p.x).toFixed(1) + ',' + sy(p.y1).toFixed(1));
      const down = a.pts.slice().reverse().map((p) => sx(p.x).toFixed(1) + ',' + sy(p.y0).toFixed(1));
      const area = el('polygon', { class: 'site-area c' + i + (leak && a.site === leak.site ? ' leak' : ''),
                                   points: up.concat(down).join(' ') });
      area.dataset.site = a.site;
      area.dataset.kind = a.kind;
      area.appendChild(el('title', {}, a.site + ' (' + a.kind + ')'));
      kids.push(area);
    });
    if (st.previous)
      kids.push(el('polyline', { class: 'curve old', points: pts(st.previous) }));
    if (st.series.length > 0) {
      kids.push(el('polyline', { class: 'curve', points: pts(st.series) }));
      // The sites come from the server's samples (every 500 ms), the RSS line
      // from /stats: the stretch of the line past the newest sample is drawn
      // pale, so that the sites and the solid line always end at the same request.
      const sampled = top.length ? top[top.length - 1].x : null;
      const ahead = sampled === null ? [] : st.series.filter((p) => p.x >= sampled);
      if (ahead.length > 1 || (ahead.length === 1 && ahead[0].x > sampled)) {
        const from = st.series.filter((p) => p.x <= sampled).slice(-1);
        kids.push(el('polyline', { class: 'ahead', points: pts(from.concat(ahead)) }));
      }
      const p = st.series[st.series.length - 1];
      kids.push(el('circle', { class: 'last', cx: sx(p.x), cy: sy(p.y), r: 8 }));
      const right = sx(p.x) > W - R - 200;
      kids.push(el('text', { class: 'last-label', x: sx(p.x) + (right ? -14 : 14), y: sy(p.y) - 14,
                             'text-anchor': right ? 'end' : 'start' }, fmtSize(p.y * 1048576)));
    } else {
      kids.push(el('text', { class: 'empty', x: (L + W - R) / 2, y: (T + H - B) / 2,
                             'text-anchor': 'middle' }, 'waiting for /stats\u2026'));
    }
    if (st.previous)
      kids.push(el('text', { class: 'tick', x: L + 14, y: T + 22, 'text-anchor': 'start' },
                   'dashed: before the server restarted'));
    svg.replaceChildren(...kids);
    svg.setAttribute('data-points', String(st.series.length));
    svg.setAttribute('data-areas', String(stacks.length));
    const legend = $('chart-legend');
    legend.replaceChildren(...stacks.map((a, i) => {
      const k = document.createElement('span');
      k.className = 'key c' + i + (leak && a.site === leak.site ? ' leak' : '');
      k.textContent = a.site + ' (' + a.kind + ')';
      return k;
    }).reverse());
  }

  // ------------------------------------------------------------ /capture table
  function setNote(text, isError) {
    const n = $('capture-note');
    n.textContent = text;
    n.className = 'note' + (isError ? ' error' : '');
  }

  // The leak's row also says whether its blocks are lost or who holds them
  // (GET /retention: one scan of the server per capture that shows a leak).
  async function showVerdict(tr, site) {
    try {
      const r = await fetchWithTimeout('/retention?format=json&top=50', FETCH_TIMEOUT_MS);
      if (!r.ok) return;
      const j = await r.json();
      const s = j.available && (j.sites || []).find((x) => x.site === site);
      if (!s || tr.dataset.site !== site) return;
      const span = document.createElement('span');
      span.className = 'verdict';
      span.textContent = ' \u2014 ' + s.verdict;
      tr.cells[0].appendChild(span);
    } catch (e) { /* the row stands without its verdict */ }
  }

  // The row to blame: the site /leaks ranks as the top leak (the server's
  // fit of live bytes against requests), wherever it is. -1 when /leaks
  // has no leak or the site is not among the rows.
  function leakIndex(stats) {
    const leak = topLeak();
    return leak ? stats.findIndex((s) => s.site === leak.site) : -1;
  }

  // Rows are created once (at most CAPTURE_TOP) and reused; extra ones hidden.
  function rowAt(tbody, i) {
    while (tbody.rows.length <= i) {
      const tr = tbody.insertRow();
      for (const cls of ['site', 'size', 'size-diff', 'count', 'count-diff', 'average'])
        tr.insertCell().className = cls;
    }
    return tbody.rows[i];
  }

  function renderCapture(c) {
    const tbody = $('sites').tBodies[0];
    const stats = (c.stats || []).slice(0, CAPTURE_TOP);
    const diff = c.mode === 'diff';
    const li = diff ? leakIndex(stats) : -1;
    stats.forEach((s, i) => {
      const tr = rowAt(tbody, i);
      const cells = tr.cells;
      tr.hidden = false;
      tr.className = i === li ? 'leak' : diff && s.size_diff === 0 ? 'flat' : '';
      tr.dataset.site = s.site;
      cells[0].textContent = s.site;
      cells[1].textContent = fmtSize(s.size);
      cells[2].textContent = diff ? fmtSize(s.size_diff, true) : '-';
      cells[2].className = 'size-diff' + (diff && s.size_diff > 0 ? ' grow' : '');
      cells[3].textContent = fmtInt(s.count);
      cells[4].textContent = diff ? fmtSigned(s.count_diff) : '-';
      cells[5].textContent = fmtSize(s.average);
    });
    for (let i = stats.length; i < tbody.rows.length; i++) tbody.rows[i].hidden = true;
    if (li >= 0) showVerdict(tbody.rows[li], stats[li].site);
    $('sites').dataset.capture = String(c.capture);
    $('sites').dataset.mode = c.mode;

    const box = $('leak');
    const leak = topLeak();
    if (leak) {
      const s = li >= 0 ? stats[li] : null;
      $('leak-site').textContent = leak.site;
      $('leak-func').textContent = leak.function ? 'in ' + leak.function + '()' : '';
      $('leak-source').textContent = s && s.source ? s.source : '(source not in this capture)';
      const rate = leak.bytes_per_request !== null
        ? fmtSize(leak.bytes_per_request, true) + ' per request (R\u00b2 ' + leak.r2.toFixed(3) + ')'
        : fmtSize(leak.bytes_per_second, true) + ' per second';
      $('leak-why').textContent = 'grows ' + rate + ', ' + fmtSize(leak.growth_bytes, true) + ' over ' +
        fmtInt(leak.window_requests) + ' requests; ' + fmtInt(leak.live_count) + ' blocks live (from /leaks)';
      box.hidden = false;
    } else {
      box.hidden = true;
    }
    if (!diff)
      setNote('capture #' + c.capture + ' at ' + clock() +
              ': absolute sizes (first capture of this server); press again for the diff');
    else
      setNote('capture #' + c.capture + ' at ' + clock() + ': what changed in the last ' +
              c.since_previous_s.toFixed(1) + ' s' + (topLeak() ? '' : ' - /leaks sees no leak'));
  }

  function clearCapture() {
    for (const tr of $('sites').tBodies[0].rows) tr.hidden = true;
    delete $('sites').dataset.capture;
    delete $('sites').dataset.mode;
    $('leak').hidden = true;
  }

  // GET /capture?format=json. A baseline only primes the server's previous
  // snapshot, so that the next press shows a diff.
  async function takeCapture(baseline) {
    const btn = $('capture');
    st.capturing = true;
    btn.disabled = true;
    try {
      const r = await fetchWithTimeout('/capture?format=json&top=' + CAPTURE_TOP + '&baseline=' + BASELINE,
                                       CAPTURE_TIMEOUT_MS);
      if (!r.ok) {
        setNote('capture failed: HTTP ' + r.status + ' ' + (await r.text()).trim(), true);
        if (baseline) st.baselineDone = true; // do not retry a refused baseline on every poll
        return;
      }
      const c = await r.json();
      if (baseline) {
        st.baselineDone = true;
        setNote('baseline capture #' + c.capture + ' taken at ' + clock() +
                '; send some load, then press Capture');
      } else {
        await refreshLeaks(); // the highlight is what /leaks says now
        renderCapture(c);
      }
    } catch (e) {
      setNote('capture failed: ' + (e.name === 'AbortError' ? 'timed out' : 'server unreachable'), true);
    } finally {
      st.capturing = false;
      btn.disabled = !(st.last && st.last.tracker);
    }
  }

  $('capture').addEventListener('click', () => {
    if (!st.capturing) takeCapture(false);
  });

  drawChart();
  poll();
})();
