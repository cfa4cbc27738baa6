// nubo's ops console: the services. The map of who calls whom (HTTP calls labelled with their
// traffic, events dashed), the table of every service, and one service's page: its replicas, facts,
// live charts over the sampled series, checks, circuit breakers and faults. Also what the faults
// view shares with it: services grouped by name and the fault switches in words.
'use strict';

(() => {
const { $, el, svg, keepFocus, known, num, pct, ms, duration, when, fact, navigate, pending, register, state } = Ops;

// ---- Services: entries of one name grouped, with the worst status, the summed traffic and every
// replica the entries' roll calls name.
const SEVERITY = ['ready', 'starting', 'draining', 'degraded', 'unreachable'];

function faultsOn(f) {
  return Boolean(f) && (f.latency_ms > 0 || f.error_rate > 0 || Boolean(f.outage) || (f.outage_routes ?? []).length > 0
    || Object.values(f.knobs ?? {}).some((v) => v != null && v !== 0));
}

function describeFaults(f) {
  if (!faultsOn(f)) return 'none';
  return [
    f.latency_ms > 0 && `+${f.latency_ms} ms latency`,
    f.error_rate > 0 && `${pct(f.error_rate)} of requests answer 503`,
    f.outage && 'the whole service is down',
    (f.outage_routes ?? []).length > 0 && `down: ${f.outage_routes.join(', ')}`,
    ...Object.entries(f.knobs ?? {}).filter(([, v]) => v != null && v !== 0).map(([k, v]) => `${k} ${v}`),
  ].filter(Boolean).join('; ');
}

/** The replicas an entry's roll call names; without one (an older gateway), the entry itself. */
const rollCall = (s) => (s.replicas?.length ? s.replicas
  : [{ instance: s.instance, version: s.version, started_at: s.started_at, status: s.status, seen_seconds_ago: null }]);

function byService(services) {
  const groups = new Map();
  for (const s of services) {
    const g = groups.get(s.name) ?? { name: s.name, replicas: [], instances: new Map(), status: null, rps: null, faulty: false, calls: new Set() };
    g.replicas.push(s);
    rollCall(s).forEach((r) => g.instances.set(r.instance ?? r, r));
    if (g.status == null || SEVERITY.indexOf(s.status) > SEVERITY.indexOf(g.status)) g.status = s.status;
    if (known(s.now?.rps)) g.rps = (g.rps ?? 0) + s.now.rps;
    g.faulty ||= faultsOn(s.faults);
    (s.calls ?? []).forEach((c) => g.calls.add(c));
    groups.set(s.name, g);
  }
  return groups;
}

const serviceHref = (name) => `/ops/services/${encodeURIComponent(name)}`;
const statusBadge = (status) => el('span', { class: `status st-${String(status).replace(/\W+/g, '-')}` }, status ?? 'unknown');

// ---- The service map: columns by call depth from the gateway (breadth first); services no
// call reaches (event consumers) in a last column on the right. Every service may call identity
// for keys and the gateway may call every one, so once calls carry traffic, the depth follows the
// calls that have carried some since the page opened: the map shows how requests flow.
const flowing = new Map(); // caller -> the callees it has sent traffic to
const NODE_W = 150;
const NODE_H = 64;
const COL_W = 300;
const ROW_H = 100;
const PAD = 24;

function columns(groups) {
  const depth = new Map();
  const called = new Set([...groups.values()].flatMap((g) => [...g.calls]));
  const queue = groups.has('gateway') ? ['gateway'] : [...groups.keys()].filter((n) => !called.has(n));
  queue.forEach((n) => depth.set(n, 0));
  const callees = (name) => (flowing.size ? flowing.get(name) ?? [] : groups.get(name).calls);
  while (queue.length) {
    const name = queue.shift();
    for (const callee of callees(name)) {
      if (groups.has(callee) && !depth.has(callee)) { depth.set(callee, depth.get(name) + 1); queue.push(callee); }
    }
  }
  const last = Math.max(0, ...depth.values()) + 1;
  const cols = [];
  for (const name of groups.keys()) (cols[depth.get(name) ?? last] ??= []).push(name);
  return cols.filter(Boolean);
}

/** An edge's path and where its label goes: between neighbours in a column straight up or down;
 * forward right side to left side; backward left side to right side, lower down, so a pair of
 * services calling each other keeps two lines; along a column otherwise, a loop out right. */
function curve(a, b) {
  if (a.x === b.x && Math.abs(a.y - b.y) <= ROW_H) {
    const [x, down] = [a.x + NODE_W / 2, b.y > a.y];
    const [y0, y1] = down ? [a.y + NODE_H, b.y] : [a.y, b.y + NODE_H];
    return { d: `M${x},${y0} L${x},${y1}`, at: [x + 8, Math.min(y0, y1) + 15], anchor: 'start' };
  }
  const side = Math.sign(b.x - a.x);
  const dy = side < 0 ? NODE_H * 0.8 : NODE_H / 2;
  const p0 = [a.x + (side < 0 ? 0 : NODE_W), a.y + dy];
  const p3 = [b.x + (side > 0 ? 0 : NODE_W), b.y + dy];
  const bend = side ? (p3[0] - p0[0]) / 2 : 60;
  const [p1, p2] = [[p0[0] + bend, p0[1]], [p3[0] + (side ? -bend : bend), p3[1]]];
  const mid = [0, 1].map((i) => (p0[i] + 3 * p1[i] + 3 * p2[i] + p3[i]) / 8);
  return { d: `M${p0} C${p1} ${p2} ${p3}`, at: [mid[0], mid[1] - 6], anchor: 'middle' };
}

function edge(e, at) {
  const [a, b] = [at.get(e.from), at.get(e.to)];
  if (!a || !b) return null;
  const { d, at: [x, y], anchor } = curve(a, b);
  const http = e.kind !== 'event';
  const [rate, idle] = [e.error_rate, http && !(e.rps > 0)];
  // Idle calls (most are to identity for keys) stay faint and unlabelled, so busy ones can be read.
  const label = http && !idle ? `${num(e.rps)}/s · ${pct(rate)} · p99 ${known(e.p99_ms) ? `${num(e.p99_ms)}ms` : '–'}` : null;
  const title = `${e.from} → ${e.to}: ${idle ? 'no calls now' : http ? label : `events ${e.subject ?? ''}`}`;
  return {
    line: svg('path', {
      class: `edge ${http ? 'http' : 'event'}${idle ? ' idle' : rate > 0.05 ? ' bad' : rate > 0 ? ' warn' : ''}`,
      d, 'data-from': e.from, 'data-to': e.to, 'stroke-dasharray': http ? null : '6 4', 'marker-end': 'url(#arrow)',
    }, svg('title', {}, title)),
    label: label && svg('text', { class: 'edge-label', x, y, 'text-anchor': anchor, 'data-from': e.from, 'data-to': e.to }, label),
  };
}

function node(g, p) {
  const open = () => navigate(serviceHref(g.name));
  const rps = `${num(g.rps)} req/s`;
  return svg('g', {
    class: 'node', 'data-service': g.name, 'data-status': g.status, 'data-key': `node:${g.name}`,
    transform: `translate(${p.x} ${p.y})`, tabindex: 0, role: 'link', onclick: open,
    onkeydown: (event) => { if (event.key === 'Enter') open(); },
  },
  svg('rect', { class: 'node-box', width: NODE_W, height: NODE_H, rx: 8 }),
  svg('rect', { class: 'node-bar', x: 1, y: 1, width: 8, height: NODE_H - 2, rx: 4 }),
  svg('text', { class: 'node-name', x: 18, y: 22 }, g.name,
    g.instances.size > 1 && svg('tspan', { class: 'node-replicas' }, ` ×${g.instances.size}`)),
  svg('text', { class: 'node-status', x: 18, y: 40 }, g.status ?? 'unknown'),
  svg('text', { class: 'node-rps', x: 18, y: 56 }, rps),
  g.faulty && svg('g', { class: 'fault-badge' },
    svg('rect', { x: NODE_W - 72, y: -10, width: 80, height: 20, rx: 10 }),
    svg('text', { x: NODE_W - 32, y: 4, 'text-anchor': 'middle' }, 'faults on')));
}

function renderMap() {
  const ov = state.overview;
  const map = $('#map');
  const groups = ov && byService(ov.services);
  const replicas = ov ? [...groups.values()].reduce((n, g) => n + g.instances.size, 0) : 0;
  $('#map-status').textContent = ov
    ? `${ov.mode} mode · ${groups.size} services, ${replicas} replicas · sampled every ${ov.sampled_every_seconds ?? '–'} s`
    : pending();
  renderServicesTable(ov?.services);
  if (!ov) return;
  for (const e of ov.edges ?? []) {
    if (e.kind !== 'event' && e.rps > 0) flowing.set(e.from, (flowing.get(e.from) ?? new Set()).add(e.to));
  }
  const cols = columns(groups);
  const rows = Math.max(1, ...cols.map((c) => c.length));
  const at = new Map();
  cols.forEach((names, col) => names.forEach((name, row) => at.set(name, {
    x: PAD + col * COL_W,
    y: PAD + ((rows - names.length) * ROW_H) / 2 + row * ROW_H,
  })));
  const width = PAD * 2 + Math.max(0, cols.length - 1) * COL_W + NODE_W + 40;
  map.setAttribute('viewBox', `0 0 ${width} ${PAD * 2 + (rows - 1) * ROW_H + NODE_H}`);
  const edges = (ov.edges ?? []).filter((e) => e.from !== e.to).map((e) => edge(e, at)).filter(Boolean);
  const arrow = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    svg('path', { class: 'arrow', d: 'M0,0 L10,5 L0,10 z' }));
  keepFocus(map, () => map.replaceChildren(
    svg('defs', {}, arrow),
    svg('g', { 'aria-hidden': 'true' }, edges.map((e) => e.line)),
    ...[...groups.values()].map((g) => node(g, at.get(g.name))),
    svg('g', { 'aria-hidden': 'true' }, edges.map((e) => e.label)),
  ));
}

function renderServicesTable(services) {
  const table = $('#services');
  const rows = services?.length
    ? services.map((s) => el('tr', { 'data-service': s.name },
      el('th', { scope: 'row' }, el('a', { href: serviceHref(s.name), 'data-key': `row:${s.name}:${s.instance}` }, s.name)),
      [s.instance ?? '–', statusBadge(s.status), s.version ?? '–', duration(s.uptime_seconds)].map((v) => el('td', {}, v)),
      [num(s.now?.rps), pct(s.now?.error_rate), ms(s.now?.p50_ms), ms(s.now?.p99_ms)].map((v) => el('td', { class: 'n' }, v))))
    : [el('tr', {}, el('td', { colspan: 9 }, services ? 'No service reports to this gateway.' : pending()))];
  keepFocus(table, () => table.tBodies[0].replaceChildren(...rows));
}

// ---- One service: facts, live charts over the series, checks, breakers and faults.
const CHARTS = [
  { label: 'Requests/s', keys: ['rps'], fmt: num },
  { label: 'Error rate', keys: ['error_rate'], fmt: pct },
  { label: 'Latency', keys: ['p50_ms', 'p99_ms'], names: ['p50', 'p99'], fmt: ms },
  { label: 'In flight', keys: ['in_flight'], fmt: num },
  { label: 'Pool connections open', keys: ['pool_open'], fmt: num },
  { label: 'Outbox backlog', keys: ['outbox_backlog'], fmt: num },
  { label: 'Consumer lag', keys: ['consumer_lag'], fmt: num },
];
const CW = 240;
const CH = 64;

/** A path through the samples, lifting the pen over unknown values. */
function line(series, key, x, y) {
  let [d, pen] = ['', 'M'];
  for (const p of series) {
    if (!known(p[key]) || !known(p.t)) { pen = 'M'; continue; }
    d += `${pen}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)} `;
    pen = 'L';
  }
  return d.trim();
}

function chart({ label, keys, names, fmt }, s) {
  const series = s.series ?? [];
  const last = series.at(-1);
  const values = series.flatMap((p) => keys.map((k) => p[k])).filter(known);
  const max = Math.max(0, ...values);
  const [t0, t1] = [series[0]?.t, last?.t];
  const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * CW : CW);
  const y = (v) => CH - 2 - (max > 0 ? (v / max) * (CH - 16) : 0);
  const current = keys.map((k, i) => `${names ? `${names[i]} ` : ''}${fmt(s.now ? s.now[k] : last?.[k])}`);
  const top = values.length ? fmt(max) : '–';
  return el('figure', { class: 'chart', 'data-metric': keys.join(' ') },
    el('figcaption', {}, el('span', {}, label),
      el('span', { class: 'chart-now' }, current.map((c, i) => el('strong', { class: `key-${i}` }, c)))),
    svg('svg', { viewBox: `0 0 ${CW} ${CH}`, role: 'img', 'aria-label': `${label}: now ${current.join(', ')}; highest ${top}` },
      svg('line', { class: 'axis', x1: 0, y1: CH - 2, x2: CW, y2: CH - 2 }),
      svg('line', { class: 'axis top', x1: 0, y1: 14, x2: CW, y2: 14 }),
      svg('text', { class: 'chart-max', x: 2, y: 10 }, `max ${top}`),
      keys.map((k, i) => svg('path', { class: `line key-${i}`, d: line(series, k, x, y) })),
      values.length ? null : svg('text', { class: 'chart-max', x: CW / 2, y: CH / 2 + 8, 'text-anchor': 'middle' }, 'no samples yet')));
}


function checksTable(checks) {
  if (!checks?.length) return el('p', {}, 'No checks reported.');
  return el('table', { class: 'checks' },
    el('thead', {}, el('tr', {}, ['Check', 'State', 'Required', 'Detail'].map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, checks.map((c) => el('tr', { 'data-check': c.name },
      el('th', { scope: 'row' }, c.name),
      el('td', {}, el('span', { class: c.ok ? 'ok' : 'bad' }, c.ok ? '✓ passing' : '✗ failing')),
      el('td', {}, c.required ? 'yes' : 'no'),
      el('td', {}, c.detail ?? '–')))));
}

function breakers(now) {
  if (!now) return el('p', {}, '– (waiting for two samples)');
  const entries = Object.entries(now.breakers ?? {});
  if (!entries.length) return el('p', {}, 'No circuit breakers.');
  return el('ul', { class: 'breakers' }, entries.map(([to, st]) =>
    el('li', { 'data-breaker': to }, `to ${to}: `, el('strong', { class: `br-${st}` }, st.replace('_', '-')))));
}

function replica(s, many) {
  const h = many ? 'h4' : 'h3';
  const list = (items) => (items?.length ? items.join(', ') : '–');
  return el('article', { class: 'replica', 'data-instance': s.instance },
    many && el('h3', {}, `Replica ${s.instance}`),
    el('dl', { class: 'facts' },
      fact('Status', statusBadge(s.status)), s.error && fact('Last error', s.error), fact('Instance', s.instance ?? '–'), fact('Version', s.version ?? '–'),
      fact('Started', when(s.started_at)), fact('Uptime', duration(s.uptime_seconds)),
      fact('Calls', list(s.calls)), fact('Publishes', list(s.publishes)),
      fact('Consumes', list((s.consumes ?? []).map((c) => `${c.subject} (${c.durable})`)))),
    el(h, {}, 'Live, over the last minutes'),
    s.now ? null : el('p', { class: 'hint' }, 'Waiting for two samples…'),
    el('div', { class: 'charts' }, CHARTS.map((c) => chart(c, s))),
    el(h, {}, 'Checks'), checksTable(s.checks),
    el(h, {}, 'Circuit breakers'), breakers(s.now),
    el(h, {}, 'Faults'),
    el('p', { class: faultsOn(s.faults) ? 'faults-now on' : 'faults-now' }, describeFaults(s.faults)),
    el('p', {}, el('a', { href: '/ops/faults', 'data-key': `faults:${s.instance}` }, 'Change faults')));
}

/** Every replica of the service, by instance; with several, the ones whose figures the page shows are marked. */
function replicaList(entries) {
  const all = [...byService(entries).values()][0].instances;
  const reached = new Set(entries.map((s) => s.instance));
  const seen = (r) => (known(r.seen_seconds_ago) ? ` · seen ${num(r.seen_seconds_ago)} s ago` : '');
  const items = [...all.values()].sort((a, b) => String(a.instance).localeCompare(String(b.instance))).map((r) =>
    el('li', { 'data-instance': r.instance },
      el('code', { class: 'replica-instance' }, r.instance ?? '–'), ' ', statusBadge(r.status),
      el('span', { class: 'replica-facts' }, ` · version ${r.version ?? '–'} · started ${when(r.started_at)}${seen(r)}`),
      all.size > 1 && reached.has(r.instance) && el('span', { class: 'replica-reached' }, ' · the figures below are this one’s')));
  return [el('h3', { id: 'replicas-title' }, `Replicas (${all.size})`),
    el('ul', { id: 'replicas', class: 'replicas', 'aria-labelledby': 'replicas-title' }, items)];
}

function renderService() {
  const { service } = state.view;
  $('#service-title').textContent = service;
  const box = $('#service');
  if (!state.overview) return box.replaceChildren(el('p', {}, pending()));
  const replicas = state.overview.services.filter((s) => s.name === service);
  if (!replicas.length) return box.replaceChildren(el('p', {}, `No service named “${service}” reports to this gateway.`));
  const traces = el('p', { class: 'service-links' },
    el('a', { href: `/ops/traces?${new URLSearchParams({ service })}`, 'data-key': 'traces' }, `Recent traces of ${service}`));
  return keepFocus(box, () => box.replaceChildren(traces, ...replicaList(replicas), ...replicas.map((s) => replica(s, replicas.length > 1))));
}

register({
  views: {
    map: { title: 'Service map', render: renderMap, overview: 'always' },
    service: { title: ({ service }) => `${service} · Services`, parent: 'map', render: renderService, overview: 'always' },
  },
});
Object.assign(Ops, { byService, describeFaults });
})();
