// nubo's ops console: the traces. A search whose filters live in the URL (trace id, order id,
// user, service, status, least duration), refreshed every 5 s; and one trace as a waterfall of
// its spans across services, the selected span's attributes and events, and the trace's log lines.
'use strict';

(() => {
const { $, el, styled, keepFocus, known, spanMs, when, fact, short, traceHref, orderTracesHref } = Ops;
const { Problem, refused, report, api, register, state, title, route, logRow, renderServiceOptions } = Ops;

// ---- Traces: a search whose filters live in the URL, refreshed every 5 s; one trace as a
// waterfall of its spans, the selected span's details and the trace's log lines.
const TRACE_FILTERS = ['trace_id', 'order_id', 'user', 'service', 'status', 'min_ms'];
const TRACE_LIMIT = 100;
// The search: its generation (a new search drops older answers), the request in flight, the
// query of the last answer, that answer, and the problem when the API refused the search.
const traces = { generation: 0, busy: null, search: '', answer: null, refused: null, announce: false };
// The open trace: its id, its last answer, whether it is gone (404), or left the window after loading.
const trace = { id: null, data: null, gone: false, stale: false, failed: false, busy: null, selected: null };

const statusWord = (s) => el('span', { class: { error: 'bad', ok: 'ok' }[s] ?? 'unset' },
  { error: '✗ error', ok: '✓ ok' }[s] ?? s ?? '–');

// A colour per service (classes c0 to c9), the same in every trace: the shop's services have
// their own, any other one of the two left, by a hash of its name.
const SHOP = ['gateway', 'identity', 'catalog', 'cart', 'orders', 'inventory', 'payments', 'notifications'];
function colour(name) {
  const i = SHOP.indexOf(name);
  return i >= 0 ? i : SHOP.length + ([...String(name ?? '')].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7) % 2);
}
const serviceTag = (name) => el('span', { class: `svc c${colour(name)}` }, name ?? '–');

function forgetTraces() {
  Object.assign(traces, { generation: traces.generation + 1, search: '', answer: null, refused: null });
  Object.assign(trace, { id: null, data: null, gone: false, stale: false, failed: false, selected: null });
}

/** On every route: the search form follows the URL, the open trace follows the path. */
function enterTraces() {
  const { name, id } = state.view;
  if (name === 'traces') {
    const query = new URLSearchParams(location.search);
    if (traces.search !== location.search) Object.assign(traces, { answer: null, refused: null });
    traces.search = location.search;
    traces.generation += 1;
    const form = $('#trace-search');
    for (const field of TRACE_FILTERS.filter((f) => f !== 'service')) form.elements[field].value = query.get(field) ?? '';
    renderServiceOptions($('#trace-service'), query.get('service') ?? '');
  }
  if (name === 'trace' && trace.id !== id) {
    Object.assign(trace, { id, data: null, gone: false, stale: false, failed: false, selected: null });
  }
  for (const link of document.querySelectorAll('.to-traces')) link.setAttribute('href', `/ops/traces${traces.search}`);
}

function searchTraces(form) {
  const query = new URLSearchParams();
  for (const field of TRACE_FILTERS) if (form.elements[field].value.trim()) query.set(field, form.elements[field].value.trim());
  const href = `/ops/traces${String(query) ? `?${query}` : ''}`;
  if (href !== location.pathname + location.search) history.pushState(null, '', href);
  traces.announce = true;
  route(false);
}

async function pollTraces() {
  const { generation } = traces;
  if (traces.busy === generation) return;
  traces.busy = generation;
  const url = new URLSearchParams(location.search);
  const query = new URLSearchParams({ limit: TRACE_LIMIT });
  for (const field of TRACE_FILTERS) if (url.get(field)) query.set(field, url.get(field));
  try {
    const answer = await api(`/admin/ops/traces?${query}`);
    if (generation !== traces.generation) return;
    Object.assign(traces, { answer: answer ?? {}, refused: null });
    renderTraces();
  } catch (error) {
    if (generation !== traces.generation) return;
    if (refused(error)) { traces.refused = error.message; renderTraces(); } else report(error);
  } finally { if (traces.busy === generation) traces.busy = null; }
}

function traceRow(t) {
  return el('tr', { 'data-trace': t.trace_id, class: t.status === 'error' ? 'has-error' : null },
    el('td', { class: 'time' }, el('time', { datetime: t.started_at }, when(t.started_at, true))),
    el('th', { scope: 'row', class: 'root' }, el('a', { href: traceHref(t.trace_id), 'data-key': `trace:${t.trace_id}` },
      t.root ?? 'Trace', el('span', { class: 'trace-id' }, ` ${short(t.trace_id)}`))),
    el('td', { class: 'status' }, statusWord(t.status)),
    el('td', { class: 'n took' }, spanMs(t.duration_ms)),
    el('td', { class: 'n count' }, el('span', { class: 'spans' }, String(t.spans ?? '–')),
      t.errors > 0 && el('span', { class: 'bad' }, ` (${t.errors} failed)`)),
    el('td', { class: 'services' }, (t.services ?? []).map(serviceTag)));
}

function renderTraces() {
  renderServiceOptions($('#trace-service'));
  const { answer } = traces;
  const list = answer?.traces ?? [];
  const filtered = new URLSearchParams(location.search);
  const searching = TRACE_FILTERS.some((f) => filtered.get(f));
  $('#trace-clear').hidden = !searching;
  $('#trace-state').textContent = traces.refused ? `The search was refused: ${traces.refused}`
    : !answer ? 'Loading…' : !list.length ? 'Refreshed every 5 s.'
    : `${list.length === TRACE_LIMIT ? `The newest ${list.length}` : list.length} trace${list.length === 1 ? '' : 's'}${searching ? ' matching' : ''}, newest first · refreshed every 5 s`;
  const w = answer?.window;
  $('#trace-window').textContent = w ? `The window holds the newest ${w.traces?.toLocaleString() ?? '–'} traces, `
    + `${w.spans?.toLocaleString() ?? '–'} of at most ${w.max_spans?.toLocaleString() ?? '–'} spans; older ones drop out.` : '';
  if (traces.announce && answer) {
    traces.announce = false;
    $('#trace-found').textContent = `${list.length} trace${list.length === 1 ? '' : 's'} found.`;
  }
  const empty = Boolean(answer) && !traces.refused && !list.length;
  $('#traces-wrap').hidden = empty;
  $('#traces-empty').hidden = !empty;
  if (empty) {
    $('#traces-empty').replaceChildren(...(searching
      ? [el('strong', {}, 'No traces match'), el('p', {}, 'No trace in the window matches these filters. ', el('a', { href: '/ops/traces' }, 'Show every trace'))]
      : [el('strong', {}, 'No traces yet: use the shop and they appear here'),
        el('p', {}, 'Every request to the shop leaves a trace. ', el('a', { href: '/' }, 'Open the shop'))]));
  }
  const table = $('#traces');
  const rows = list.length ? list.map(traceRow) : [el('tr', {}, el('td', { colspan: 6 }, answer ? '–' : 'Loading…'))];
  keepFocus(table, () => table.tBodies[0].replaceChildren(...rows));
}

async function pollTrace() {
  const { id } = state.view;
  const here = () => state.view.name === 'trace' && state.view.id === id;
  if (trace.busy === id) return;
  trace.busy = id;
  try {
    const data = await api(`/admin/ops/traces/${encodeURIComponent(id)}`);
    if (!here()) return;
    // Spans may still arrive (events are handled later); a trace that did not change is not redrawn.
    const changed = JSON.stringify(data) !== JSON.stringify(trace.data) || trace.stale || trace.failed;
    Object.assign(trace, { data, stale: false, failed: false });
    if (changed) renderTrace();
  } catch (error) {
    if (!here()) return;
    // Gone before it was shown: the 404 page; gone since: the copy shown stays, with a note.
    const gone = error instanceof Problem && error.status === 404;
    if (!gone) report(error);
    if (trace.data ? !gone || trace.stale : !gone && trace.failed) return;
    Object.assign(trace, gone ? { gone: !trace.data, stale: Boolean(trace.data) } : { failed: true });
    renderTrace();
  } finally { if (trace.busy === id) trace.busy = null; }
}

/** The spans in tree order (each under its parent, by start) with their depth; a span whose
 * parent is not in the trace starts a tree of its own. */
function spanTree(spans = []) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  const sorted = [...spans].sort((a, b) => (a.start_ms ?? 0) - (b.start_ms ?? 0));
  for (const s of sorted) {
    const parent = ids.has(s.parent_span_id) && s.parent_span_id !== s.span_id ? s.parent_span_id : null;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const rows = [];
  const seen = new Set();
  const walk = (parent, depth) => (children.get(parent) ?? []).forEach((span) => {
    if (seen.has(span.span_id)) return;
    seen.add(span.span_id);
    rows.push({ span, depth });
    walk(span.span_id, depth + 1);
  });
  walk(null, 0);
  sorted.filter((s) => !seen.has(s.span_id)).forEach((s) => { seen.add(s.span_id); rows.push({ span: s, depth: 0 }); walk(s.span_id, 1); });
  return rows;
}

function renderTrace() {
  const { id } = state.view;
  const { data, gone } = trace;
  $('#trace-title').textContent = `Trace ${short(id)}`;
  document.title = `${title()} · nubo ops`;
  $('#trace-gone').hidden = !gone;
  $('#trace-body').hidden = !data || gone;
  const stateText = gone ? ''
    : !data ? (trace.failed ? 'The trace could not be loaded yet: the console keeps trying.' : 'Loading…')
    : trace.stale ? 'This trace has left the window since it was loaded: this is the last copy.' : '';
  $('#trace-note').textContent = stateText;
  $('#trace-note').hidden = !stateText;
  if (!data || gone) return;
  const rows = spanTree(data.spans);
  if (!rows.some((r) => r.span.span_id === trace.selected)) {
    trace.selected = (rows.find((r) => r.span.status === 'error') ?? rows[0])?.span.span_id ?? null;
  }
  const errors = rows.filter((r) => r.span.status === 'error').length;
  $('#trace-facts').replaceChildren(...[
    fact('Trace id', el('code', {}, data.trace_id ?? id)), fact('Root', rows[0]?.span.name ?? '–'),
    fact('Started', when(data.started_at)), fact('Duration', spanMs(data.duration_ms)),
    fact('Spans', [String(rows.length), errors > 0 && el('span', { class: 'bad' }, ` (${errors} failed)`)])].flat());
  const services = [...new Set(rows.map((r) => r.span.service))];
  $('#trace-legend').replaceChildren(...services.map((s) => el('li', {}, serviceTag(s))),
    el('li', {}, el('span', { class: 'swatch err', 'aria-hidden': 'true' }), 'striped, ✗ error: the span failed'));
  const wf = $('#waterfall');
  keepFocus(wf, () => renderWaterfall(wf, data, rows));
  renderSpanDetail();
  const lines = data.logs ?? [];
  $('#trace-logs-title').textContent = `Log lines of this trace (${lines.length}), oldest first`;
  $('#trace-logs').tBodies[0].replaceChildren(...(lines.length ? lines.map((l) => logRow(l, false))
    : [el('tr', {}, el('td', { colspan: 4 }, 'No log line carries this trace id.'))]));
}

function renderWaterfall(box, data, rows) {
  const total = Math.max(data.duration_ms ?? 0, ...rows.map(({ span: s }) => (s.start_ms ?? 0) + (s.duration_ms ?? 0))) || 1;
  const share = (v) => `${Math.min(100, Math.max(0, ((v ?? 0) / total) * 100))}%`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => styled(el('span', { class: 'wf-tick' }, spanMs(f * total)), { left: `${f * 100}%` }));
  const row = ({ span: s, depth }) => {
    const [c, error, start] = [colour(s.service), s.status === 'error', s.start_ms ?? 0];
    const current = s.span_id === trace.selected;
    const button = el('button', {
      type: 'button', class: `wf-row span-row${error ? ' error' : ''}`, 'data-span': s.span_id, 'data-key': `span:${s.span_id}`,
      'aria-current': current ? 'true' : null, tabindex: current ? 0 : -1,
    },
    el('span', { class: 'wf-label' }, el('span', { class: 'wf-text' },
      el('span', { class: `wf-service svc c${c}` }, s.service ?? '–'), ' ', el('span', { class: 'wf-name' }, s.name ?? '–')),
    error && el('span', { class: 'wf-error' }, ' ✗ error')),
    el('span', { class: 'wf-ms' }, el('span', { class: 'vh' }, ', took '), spanMs(s.duration_ms)),
    el('span', { class: 'wf-track' },
      styled(el('span', { class: `wf-bar c${c}${error ? ' err' : ''}` }), { left: share(start), width: share(Math.min(s.duration_ms ?? 0, total - start)) }),
      el('span', { class: 'vh' }, `, from ${spanMs(start)}`)));
    button.style.setProperty('--depth', Math.min(depth, 10));
    return el('li', {}, button);
  };
  box.replaceChildren(
    el('div', { class: 'wf-row wf-axis', 'aria-hidden': 'true' }, el('span', {}, 'Service and span'), el('span', { class: 'wf-ms' }, 'Took'),
      el('span', { class: 'wf-track' }, ticks)),
    el('ol', { class: 'wf-rows', 'aria-label': `${rows.length} spans, each under its parent` }, rows.map(row)));
}

function selectSpan(id) {
  trace.selected = id;
  for (const row of document.querySelectorAll('#waterfall [data-span]')) {
    row.setAttribute('tabindex', row.dataset.span === id ? 0 : -1);
    if (row.dataset.span === id) row.setAttribute('aria-current', 'true'); else row.removeAttribute('aria-current');
  }
  renderSpanDetail();
}

/** Up and down (Home, End) move between the spans: one tab stop for the whole waterfall. */
function waterfallKeys(event) {
  const rows = [...$('#waterfall').querySelectorAll('[data-span]')];
  const i = rows.indexOf(document.activeElement);
  const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: rows.length - 1 }[event.key];
  if (i < 0 || to == null || !rows[to]) return;
  event.preventDefault();
  rows.forEach((r) => r.setAttribute('tabindex', r === rows[to] ? 0 : -1));
  rows[to].focus();
}

const attrValue = (k, v) => {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return k === 'order_id' ? [text, ' ', el('a', { href: orderTracesHref(text) }, 'traces of this order')] : text;
};

function attributes(attrs, empty) {
  const entries = Object.entries(attrs ?? {});
  if (!entries.length) return el('p', { class: 'hint' }, empty);
  return el('table', { class: 'attrs' }, el('tbody', {}, entries.map(([k, v]) =>
    el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, attrValue(k, v))))));
}

function renderSpanDetail() {
  const spans = trace.data?.spans ?? [];
  const s = spans.find((x) => x.span_id === trace.selected);
  $('#span-detail-title').textContent = s ? `Span: ${s.name}` : 'Span';
  const box = $('#span-body');
  if (!s) return box.replaceChildren(el('p', {}, 'Select a span in the waterfall.'));
  const parent = spans.find((x) => x.span_id === s.parent_span_id);
  const t0 = Date.parse(trace.data.started_at);
  const at = known(t0) && known(s.start_ms) ? ` (${when(new Date(t0 + s.start_ms).toISOString(), true)})` : '';
  return box.replaceChildren(
    el('dl', { class: 'facts' },
      fact('Name', s.name ?? '–'), fact('Service', serviceTag(s.service)), fact('Kind', s.kind ?? '–'),
      fact('Start', `+${spanMs(s.start_ms)}${at}`), fact('Duration', spanMs(s.duration_ms)),
      fact('Status', [statusWord(s.status), s.status_message && el('span', { class: 'status-message' }, ` ${s.status_message}`)]),
      fact('Span id', el('code', {}, s.span_id)),
      fact('Parent', parent ? `${parent.name} (${parent.service})` : s.parent_span_id ? `${s.parent_span_id}, not in this trace` : 'none: the root')),
    el('h4', {}, 'Attributes'), attributes(s.attributes, 'No attributes.'),
    el('h4', {}, 'Events'),
    s.events?.length
      ? el('ol', { class: 'events' }, s.events.map((e) => el('li', {},
        el('span', { class: 'event-at' }, `+${spanMs(e.at_ms)}`), ' ', el('strong', {}, e.name ?? '–'),
        Object.keys(e.attributes ?? {}).length ? attributes(e.attributes) : null)))
      : el('p', { class: 'hint' }, 'No events.'));
}

/** The trace view's title: its root span's name once known. */
function traceTitle({ id }) {
  if (trace.gone) return 'Trace not in the window · Traces';
  const root = trace.data && spanTree(trace.data.spans)[0]?.span.name;
  return `${root ? `${root} · ` : ''}Trace ${short(id)}`;
}

register({
  views: {
    traces: { title: 'Traces', render: renderTraces, slowTick: pollTraces, overview: 'once' },
    trace: { title: traceTitle, parent: 'traces', render: renderTrace, slowTick: () => { if (!trace.gone) pollTrace(); } },
  },
  onRoute: enterTraces,
  forget: forgetTraces,
  wire() {
    $('#trace-search').addEventListener('submit', (event) => { event.preventDefault(); searchTraces(event.target); });
    $('#waterfall').addEventListener('click', (event) => {
      const row = event.target.closest('[data-span]');
      if (row) selectSpan(row.dataset.span);
    });
    $('#waterfall').addEventListener('keydown', waterfallKeys);
  },
});
})();
