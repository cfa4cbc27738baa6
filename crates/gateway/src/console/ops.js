// nubo's ops console: the service map, each service's health and live charts, the logs, the
// traces (a search and each trace's waterfall) and the fault switches, all through the gateway's admin ops API on this origin. Like the storefront,
// pages are built with DOM calls (never innerHTML), so nothing from the API can inject markup;
// the tokens live in sessionStorage, for this tab only.
'use strict';

const $ = (selector) => document.querySelector(selector);
const SVG = 'http://www.w3.org/2000/svg';
const POLL_MS = 2000;
const TRACE_POLL_MS = 5000;
const MAX_LOG_ROWS = 1000;

// ---- DOM helpers: an element with attributes (`on*` ones become listeners) and children.
function build(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.flat().filter((c) => c != null && c !== false));
  return node;
}
const el = (tag, attrs = {}, ...children) => build(document.createElement(tag), attrs, children);
/** Sets inline style through the CSSOM (the CSP allows that, not style attributes). */
const styled = (node, props) => { Object.assign(node.style, props); return node; };
const svg = (tag, attrs = {}, ...children) => build(document.createElementNS(SVG, tag), attrs, children);

/** Re-renders inside `container` and gives focus back to the element with the same `data-key`. */
function keepFocus(container, render) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  render();
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

// ---- Numbers and times: anything unknown (null, NaN) reads as "–".
const known = (v) => typeof v === 'number' && Number.isFinite(v);
const trim = (v, digits) => String(+v.toFixed(digits));
const num = (v) => (known(v) ? trim(v, Math.abs(v) < 10 ? 1 : 0) : '–');
const pct = (v) => (known(v) ? `${trim(v * 100, v < 0.1 ? 1 : 0)}%` : '–');
const ms = (v) => (known(v) ? `${num(v)} ms` : '–');
/** A span's or trace's time, finer below 10 ms, in seconds from one. */
const spanMs = (v) => (!known(v) ? '–' : v >= 1000 ? `${trim(v / 1000, 2)} s` : `${trim(v, v < 1 ? 2 : v < 10 ? 1 : 0)} ms`);

function duration(s) {
  if (!known(s)) return '–';
  const [d, h, m, sec] = [s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60].map(Math.floor);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
}

/** A date as local text (`clock`: time of day to the millisecond); unparsable ones as given. */
function when(iso, clock = false) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso ?? '–';
  return clock ? `${d.toLocaleTimeString('en-GB')}.${String(d.getMilliseconds()).padStart(3, '0')}` : d.toLocaleString();
}

// ---- Errors: one banner for a failing API (network or 5xx), cleared by the next success.
class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `the gateway answered ${status}`);
    this.status = status;
    this.errors = Array.isArray(body.errors) ? body.errors : [];
  }
}

/** Shows `text` in the banner, or clears it; the same text is not re-announced every poll. */
function banner(text = '') {
  const box = $('#error');
  if (box.textContent !== text) box.textContent = text;
  box.hidden = !text;
}

/** A 4xx that answers what was asked (a rejected value, an unknown name): shown where it was asked. */
const refused = (error) => error instanceof Problem && error.status >= 400 && error.status < 500 && ![401, 403].includes(error.status);

/** What to do with a failed call: sign-in for 401, the denied page for 403, else the banner. */
function report(error) {
  if (error instanceof Problem && error.status === 401) return signedOut('Your session has ended: please sign in again.');
  if (error instanceof Problem && error.status === 403) return deny();
  if (error instanceof Problem) return banner(`The ops API failed (${error.status}): ${error.message}`);
  console.error(error);
  return banner('The gateway could not be reached: check the connection. The console keeps trying.');
}

// ---- The session and the API client.
const session = {
  get access() { return sessionStorage.getItem('nubo.ops.access'); },
  get refresh() { return sessionStorage.getItem('nubo.ops.refresh'); },
  start({ access_token: access, refresh_token: refresh }, email) {
    Object.entries({ access, refresh, email }).forEach(([k, v]) => v && sessionStorage.setItem(`nubo.ops.${k}`, v));
  },
  end() { ['access', 'refresh', 'email'].forEach((k) => sessionStorage.removeItem(`nubo.ops.${k}`)); },
  /** The account's email from the access token's claims: for display only, the server checks it. */
  get email() {
    try {
      const part = this.access.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
      if (claims.email) return claims.email;
    } catch { /* not a JWT we can read: fall back to what was typed */ }
    return sessionStorage.getItem('nubo.ops.email') ?? 'an account';
  },
};

// A refresh token is single use: calls that hit 401 together share one refresh.
let refreshing = null;

function refreshTokens() {
  refreshing ??= (async () => {
    try {
      const res = await fetch('/api/v1/identity/refresh', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: session.refresh }) });
      if (!res.ok) return false;
      session.start(await res.json());
      return true;
    } catch { return false; } finally { refreshing = null; }
  })();
  return refreshing;
}

/** Calls `/api/v1{path}`; answers the parsed body of a 2xx, throws a `Problem` for anything else. */
async function api(path, { method = 'GET', body, auth = true } = {}) {
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  const send = () => fetch(`/api/v1${path}`, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { ...headers, ...(auth && session.access ? { authorization: `Bearer ${session.access}` } : {}) },
  });
  let res = await send();
  if (res.status === 401 && auth && session.refresh && (await refreshTokens())) res = await send();
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* a proxy's plain-text error page */ }
  if (!res.ok) throw new Problem(res.status, parsed ?? {});
  banner();
  return parsed;
}

// ---- State, views and navigation: every view has a real URL under /ops.
// The view, the last overview answer, whether the last overview request failed, and whether the
// account turned out not to be an administrator's.
const state = { view: { name: 'map' }, overview: null, failed: false, denied: false };
const TITLES = { map: 'Service map', logs: 'Logs', traces: 'Traces', faults: 'Faults', missing: 'Page not found' };

function parse(pathname) {
  const path = pathname.replace(/\/+$/, '');
  const plain = { '/ops': 'map', '/ops/logs': 'logs', '/ops/traces': 'traces', '/ops/faults': 'faults' }[path];
  const [, kind, name] = path.match(/^\/ops\/(services|traces)\/([^/]+)$/) ?? [];
  try {
    if (plain) return { name: plain };
    if (kind === 'services') return { name: 'service', service: decodeURIComponent(name) };
    return kind ? { name: 'trace', id: decodeURIComponent(name) } : { name: 'missing' };
  } catch { return { name: 'missing' }; } // a malformed escape
}

function title() {
  const { name, service, id } = state.view;
  if (name === 'service') return `${service} · Services`;
  if (name !== 'trace') return TITLES[name];
  if (trace.gone) return 'Trace not in the window · Traces';
  const root = trace.data && spanTree(trace.data.spans)[0]?.span.name;
  return `${root ? `${root} · ` : ''}Trace ${short(id)}`;
}

function show(id, title, moveFocus) {
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== id;
  document.title = `${title} · nubo ops`;
  if (moveFocus) document.querySelector(`#${id} h2`).focus();
}

function markNav(name) {
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else if (link.dataset.view === { service: 'map', trace: 'traces' }[name]) link.setAttribute('aria-current', 'true');
    else link.removeAttribute('aria-current');
  }
}

function renderSession() {
  document.querySelectorAll('.signed-in').forEach((n) => { n.hidden = !session.access; });
  const who = session.access ? session.email : '';
  $('#who').textContent = who;
  $('#denied-who').textContent = who;
}

function route(moveFocus = false) {
  state.view = parse(location.pathname);
  const { name } = state.view;
  renderSession();
  markNav(name);
  if (!session.access || state.denied) {
    stopPolling();
    if (session.access) show('denied', 'Administrators only', moveFocus);
    else show('view-signin', 'Sign in', moveFocus);
    return;
  }
  enterTraces();
  render();
  show(`view-${name}`, title(), moveFocus);
  startPolling();
}

function navigate(href) {
  if (href !== location.pathname + location.search) history.pushState(null, '', href);
  route(true);
}

function render() {
  ({ map: renderMap, service: renderService, faults: renderFaults, logs: renderLogServices, traces: renderTraces, trace: renderTrace })[state.view.name]?.();
}
const pending = () => (state.failed ? 'The services could not be loaded yet: the console keeps trying.' : 'Loading…');

// ---- Polling: the overview every 2 s while a map, service or faults view is open, the logs
// while the logs view is; the traces or the open trace every 5 s; nothing while the tab is hidden.
let ticker = null;
let slowTicker = null;
let overviewRequest = null;

function startPolling() {
  stopPolling();
  if (document.visibilityState === 'hidden' || !session.access || state.denied) return;
  tick();
  slowTick();
  ticker = setInterval(tick, POLL_MS);
  slowTicker = setInterval(slowTick, TRACE_POLL_MS);
}

function stopPolling() { clearInterval(ticker); clearInterval(slowTicker); ticker = slowTicker = null; }

function tick() {
  const { name } = state.view;
  // The logs and traces views need the overview once, for their service filter.
  if (!['missing', 'trace'].includes(name) && (!['logs', 'traces'].includes(name) || !state.overview)) refreshOverview();
  if (name === 'logs' && !logs.paused) pollLogs();
}

function slowTick() {
  if (state.view.name === 'traces') pollTraces();
  if (state.view.name === 'trace' && !trace.gone) pollTrace();
}

/** One overview request at a time; callers share the one in flight. */
function refreshOverview() {
  overviewRequest ??= (async () => {
    try {
      state.overview = await api('/admin/ops/overview');
      state.failed = false;
    } catch (error) { state.failed = true; report(error); }
    if (session.access && !state.denied) render();
  })().finally(() => { overviewRequest = null; });
  return overviewRequest;
}

/** An overview asked for after now: waits out a request that may predate a change. */
async function freshOverview() {
  await overviewRequest;
  return refreshOverview();
}

// ---- Sign in and out.
async function signIn(form) {
  const button = form.querySelector('button');
  button.disabled = true;
  $('#signin-message').textContent = '';
  try {
    const email = form.email.value.trim();
    const tokens = await api('/identity/login', { method: 'POST', auth: false, body: { email, password: form.password.value } });
    session.start(tokens, email);
    form.reset();
    route(true);
  } catch (error) {
    $('#signin-message').textContent = error instanceof Problem ? error.message : 'The gateway could not be reached.';
  } finally { button.disabled = false; }
}

function signedOut(why = '') {
  session.end();
  Object.assign(state, { overview: null, failed: false, denied: false });
  $('#fault-forms').replaceChildren(el('p', { class: 'pending' }, 'Loading…'));
  resetLogs();
  forgetTraces();
  $('#signin-message').textContent = why;
  route(true);
}
const deny = () => { state.denied = true; route(true); };

async function signOut() {
  const refresh = session.refresh;
  signedOut('You are signed out.');
  if (refresh) await api('/identity/logout', { method: 'POST', auth: false, body: { refresh_token: refresh } }).catch(() => {});
}

// ---- Services: replicas of one name grouped, with the worst status and the summed traffic.
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

function byService(services) {
  const groups = new Map();
  for (const s of services) {
    const g = groups.get(s.name) ?? { name: s.name, replicas: [], status: null, rps: null, faulty: false, calls: new Set() };
    g.replicas.push(s);
    if (g.status == null || SEVERITY.indexOf(s.status) > SEVERITY.indexOf(g.status)) g.status = s.status;
    if (known(s.now?.rps)) g.rps = (g.rps ?? 0) + s.now.rps;
    g.faulty ||= faultsOn(s.faults);
    (s.calls ?? []).forEach((c) => g.calls.add(c));
    groups.set(s.name, g);
  }
  return groups;
}

const serviceHref = (name) => `/ops/services/${encodeURIComponent(name)}`;
const statusBadge = (status) => el('span', { class: `status st-${status}` }, status ?? 'unknown');

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
  svg('text', { class: 'node-name', x: 18, y: 22 }, g.replicas.length > 1 ? `${g.name} ×${g.replicas.length}` : g.name),
  svg('text', { class: 'node-status', x: 18, y: 40 }, g.status ?? 'unknown'),
  svg('text', { class: 'node-rps', x: 18, y: 56 }, rps),
  g.faulty && svg('g', { class: 'fault-badge' },
    svg('rect', { x: NODE_W - 72, y: -10, width: 80, height: 20, rx: 10 }),
    svg('text', { x: NODE_W - 32, y: 4, 'text-anchor': 'middle' }, 'faults on')));
}

function renderMap() {
  const ov = state.overview;
  const map = $('#map');
  $('#map-status').textContent = ov
    ? `${ov.mode} mode · ${ov.services.length} replicas · sampled every ${ov.sampled_every_seconds ?? '–'} s`
    : pending();
  renderServicesTable(ov?.services);
  if (!ov) return;
  for (const e of ov.edges ?? []) {
    if (e.kind !== 'event' && e.rps > 0) flowing.set(e.from, (flowing.get(e.from) ?? new Set()).add(e.to));
  }
  const groups = byService(ov.services);
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

const fact = (term, value) => [el('dt', {}, term), el('dd', {}, value)];

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

function renderService() {
  const { service } = state.view;
  $('#service-title').textContent = service;
  const box = $('#service');
  if (!state.overview) return box.replaceChildren(el('p', {}, pending()));
  const replicas = state.overview.services.filter((s) => s.name === service);
  if (!replicas.length) return box.replaceChildren(el('p', {}, `No service named “${service}” reports to this gateway.`));
  const traces = el('p', { class: 'service-links' },
    el('a', { href: `/ops/traces?${new URLSearchParams({ service })}`, 'data-key': 'traces' }, `Recent traces of ${service}`));
  return keepFocus(box, () => box.replaceChildren(traces, ...replicas.map((s) => replica(s, replicas.length > 1))));
}

// ---- Faults: one form per service, filled on first render and after Apply or restore only,
// so a poll never overwrites what an operator is typing.
function faultForm(s) {
  const id = (field) => `fault-${s.name}-${field}`;
  const field = (name, label, attrs, hint) => el('div', { class: 'field' },
    el('label', { for: id(name) }, label),
    el('input', { id: id(name), name, ...attrs, 'aria-describedby': hint ? id(`${name}-hint`) : null }),
    hint && el('span', { class: 'hint', id: id(`${name}-hint`) }, hint));
  const form = el('form', {
    class: 'faults', 'data-service': s.name, 'aria-labelledby': id('title'), novalidate: true,
    onsubmit: (event) => { event.preventDefault(); applyFaults(form); },
  },
  field('latency_ms', 'Added latency (ms)', { type: 'number', min: 0, max: 30000, step: 1, inputmode: 'numeric' }),
  field('error_rate', 'Error rate (0 to 1)', { type: 'number', min: 0, max: 1, step: 0.05, inputmode: 'decimal' }),
  el('div', { class: 'field check' },
    el('input', { id: id('outage'), name: 'outage', type: 'checkbox' }),
    el('label', { for: id('outage') }, 'Outage: the whole service answers 503')),
  field('outage_routes', 'Routes down (path prefixes, comma separated)', { type: 'text', placeholder: '/api/v1/products', spellcheck: 'false' }),
  (s.knobs ?? []).map((k) => field(`knob:${k.name}`, `${k.name}${k.unit ? ` (${k.unit})` : ''}`,
    { type: 'number', min: k.min, max: k.max, step: 'any' }, k.meaning)),
  el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Apply'),
    el('span', { class: 'form-status', role: 'status' })),
  el('div', { class: 'form-problem', role: 'alert', hidden: true }));
  fill(form, s.faults);
  return el('section', { class: 'card fault-card', id: `faults-${s.name}`, 'data-service': s.name },
    el('h3', { id: id('title') }, s.name), el('p', { class: 'faults-now' }), form);
}

function fill(form, f = {}) {
  const field = form.elements;
  field.latency_ms.value = f?.latency_ms ?? 0;
  field.error_rate.value = f?.error_rate ?? 0;
  field.outage.checked = Boolean(f?.outage);
  field.outage_routes.value = (f?.outage_routes ?? []).join(', ');
  for (const input of form.querySelectorAll('input[name^="knob:"]')) input.value = f?.knobs?.[input.name.slice(5)] ?? '';
  showProblem(form, null);
}

function read(form) {
  const field = form.elements;
  const knobs = [...form.querySelectorAll('input[name^="knob:"]')].filter((i) => i.value !== '')
    .map((i) => [i.name.slice(5), Number(i.value)]);
  return {
    latency_ms: Number(field.latency_ms.value || 0), error_rate: Number(field.error_rate.value || 0),
    outage: field.outage.checked, knobs: Object.fromEntries(knobs),
    outage_routes: field.outage_routes.value.split(',').map((r) => r.trim()).filter(Boolean),
  };
}

/** The problem's detail and field errors next to the form, and the named inputs marked invalid. */
function showProblem(form, problem) {
  const box = form.querySelector('.form-problem');
  form.querySelectorAll('[aria-invalid]').forEach((input) => input.removeAttribute('aria-invalid'));
  box.hidden = !problem;
  if (!problem) return box.replaceChildren();
  box.replaceChildren(el('p', {}, problem.message),
    problem.errors.length ? el('ul', {}, problem.errors.map((e) => el('li', {}, `${e.field}: ${e.message}`))) : null);
  for (const e of problem.errors) {
    const name = String(e.field).replace(/^knobs\./, 'knob:');
    form.querySelector(`[name="${CSS.escape(name)}"]`)?.setAttribute('aria-invalid', 'true');
  }
}

async function applyFaults(form) {
  const button = form.querySelector('button[type=submit]');
  const status = form.querySelector('.form-status');
  button.disabled = true;
  status.textContent = 'Applying…';
  try {
    const answer = await api(`/admin/ops/faults/${encodeURIComponent(form.dataset.service)}`, { method: 'PUT', body: read(form) });
    fill(form, answer.faults);
    status.textContent = `Applied at ${new Date().toLocaleTimeString()}.`;
    freshOverview();
  } catch (error) {
    status.textContent = '';
    // A rejected value (422), an unknown service (404): next to the form, where it was asked.
    if (refused(error)) showProblem(form, error);
    else report(error);
  } finally { button.disabled = false; }
}

async function restoreAll() {
  const button = $('#restore-all');
  button.disabled = true;
  try {
    const { restored = [] } = (await api('/admin/ops/faults', { method: 'DELETE' })) ?? {};
    $('#restore-status').textContent = restored.length ? `Restored ${restored.join(', ')}.` : 'No service had a fault on.';
    await freshOverview();
    for (const form of document.querySelectorAll('form.faults')) {
      const s = state.overview?.services.find((x) => x.name === form.dataset.service);
      fill(form, s?.faults ?? {});
      form.querySelector('.form-status').textContent = '';
    }
  } catch (error) { report(error); } finally { button.disabled = false; }
}

function renderFaults() {
  const box = $('#fault-forms');
  const ov = state.overview;
  if (!ov) {
    box.querySelector('.pending')?.replaceChildren(pending());
    return renderAudit(null);
  }
  box.querySelector('.pending')?.remove();
  for (const g of byService(ov.services).values()) {
    const s = g.replicas[0];
    let card = box.querySelector(`.fault-card[data-service="${CSS.escape(s.name)}"]`);
    if (!card) box.append(card = faultForm(s));
    const now = card.querySelector('.faults-now');
    now.textContent = `On now: ${describeFaults(s.faults)}`;
    now.classList.toggle('on', g.faulty);
  }
  if (!box.children.length) box.append(el('p', { class: 'pending' }, 'No service reports to this gateway.'));
  return renderAudit(ov.audit ?? []);
}

function renderAudit(audit) {
  const list = $('#audit');
  if (!audit) return list.replaceChildren(el('li', {}, pending()));
  const at = (a) => Date.parse(a.at) || 0;
  const items = [...audit].sort((a, b) => at(b) - at(a)).map((a) => el('li', {},
    el('time', { datetime: a.at }, when(a.at)), ' · ', el('strong', {}, a.who ?? '–'), ' · ',
    el('span', { class: 'audit-service' }, a.service ?? '–'), ': ', a.what ?? ''));
  return list.replaceChildren(...(items.length ? items : [el('li', {}, 'No fault has been changed yet.')]));
}

// ---- Logs: filtered, live (after= the last cursor every 2 s), at most 1000 rows kept.
const logs = { after: null, paused: false, generation: 0, busy: null };

function resetLogs() {
  logs.after = null;
  logs.generation += 1;
  $('#logs').tBodies[0].replaceChildren();
  $('#log-state').textContent = 'Loading…';
}

function logQuery() {
  const params = new URLSearchParams({ limit: 500 });
  const filters = { service: '#log-service', level: '#log-level', q: '#log-q', trace_id: '#log-trace' };
  Object.entries(filters).forEach(([name, selector]) => $(selector).value.trim() && params.set(name, $(selector).value.trim()));
  if (logs.after != null) params.set('after', logs.after);
  return params;
}

async function pollLogs() {
  const { generation } = logs;
  if (logs.busy === generation) return;
  logs.busy = generation;
  try {
    const answer = await api(`/admin/ops/logs?${logQuery()}`);
    if (generation !== logs.generation) return;
    logs.after = answer?.next ?? logs.after;
    appendLogs(answer?.lines ?? []);
  } catch (error) { report(error); } finally { if (logs.busy === generation) logs.busy = null; }
}

/** A log line as a row; `withTrace` false leaves out the trace column (a trace's own lines). */
function logRow(line, withTrace = true) {
  const level = String(line.level ?? '').toLowerCase();
  const fields = Object.entries(line.fields ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return el('tr', { 'data-seq': line.seq, class: `lv-${level}` },
    el('td', { class: 'time' }, el('time', { datetime: line.time }, when(line.time, true))),
    el('td', {}, el('span', { class: `level level-${level}` }, line.level ?? '–')),
    el('td', {}, line.service ?? '–'),
    el('td', { class: 'message' }, line.message ?? '',
      line.target && el('span', { class: 'target' }, line.target),
      fields && el('span', { class: 'fields' }, fields)),
    withTrace && el('td', { class: 'trace-cell' }, line.trace_id ? [
      el('button', { type: 'button', class: 'trace', 'data-trace': line.trace_id, title: line.trace_id },
        el('span', { class: 'vh' }, 'Show only trace '), `${short(line.trace_id)}…`), ' ',
      el('a', { href: traceHref(line.trace_id), class: 'trace-open' }, 'Open', el('span', { class: 'vh' }, ` trace ${short(line.trace_id)}`)),
    ] : '–'));
}

function appendLogs(lines) {
  const wrap = $('#log-wrap');
  const body = $('#logs').tBodies[0];
  const atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
  body.append(...lines.map((line) => logRow(line)));
  while (body.rows.length > MAX_LOG_ROWS) body.rows[0].remove();
  if (atBottom && lines.length) wrap.scrollTop = wrap.scrollHeight;
  $('#log-state').textContent = body.rows.length
    ? `${body.rows.length} lines, oldest first${logs.paused ? ' · paused' : ' · live'}`
    : 'No log lines match these filters.';
}
const refilter = () => { resetLogs(); pollLogs(); };

function togglePause() {
  logs.paused = !logs.paused;
  $('#log-pause').textContent = logs.paused ? 'Resume live updates' : 'Pause live updates';
  appendLogs([]);
  if (!logs.paused) pollLogs();
}

/** A service filter's options follow the overview's services, keeping the choice (even one the
 * overview does not list, as a linked search may name). */
function renderServiceOptions(select, chosen = select.value) {
  const names = [...new Set([...(state.overview?.services ?? []).map((s) => s.name), chosen].filter(Boolean))];
  if (names.join() !== [...select.options].slice(1).map((o) => o.value).join()) {
    select.replaceChildren(el('option', { value: '' }, 'All services'), ...names.map((n) => el('option', { value: n }, n)));
  }
  select.value = chosen;
}
const renderLogServices = () => renderServiceOptions($('#log-service'));

// ---- Traces: a search whose filters live in the URL, refreshed every 5 s; one trace as a
// waterfall of its spans, the selected span's details and the trace's log lines.
const TRACE_FILTERS = ['trace_id', 'order_id', 'user', 'service', 'status', 'min_ms'];
const TRACE_LIMIT = 100;
// The search: its generation (a new search drops older answers), the request in flight, the
// query of the last answer, that answer, and the problem when the API refused the search.
const traces = { generation: 0, busy: null, search: '', answer: null, refused: null, announce: false };
// The open trace: its id, its last answer, whether it is gone (404), or left the window after loading.
const trace = { id: null, data: null, gone: false, stale: false, failed: false, busy: null, selected: null };

const short = (id) => String(id).slice(0, 8);
const traceHref = (id) => `/ops/traces/${encodeURIComponent(id)}`;
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
  return k === 'order_id' ? [text, ' ', el('a', { href: `/ops/traces?${new URLSearchParams({ order_id: text })}` }, 'traces of this order')] : text;
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

// ---- Wiring.
document.addEventListener('DOMContentLoaded', () => {
  // Links inside the console change the view without a page load; others (the shop) load.
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[href]');
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const href = link.getAttribute('href');
    if (href !== '/ops' && !href.startsWith('/ops/')) return;
    event.preventDefault();
    navigate(href);
  });
  window.addEventListener('popstate', () => route(true));
  // startPolling itself declines when signed out or denied.
  document.addEventListener('visibilitychange', () => (document.visibilityState === 'hidden' ? stopPolling() : startPolling()));
  $('#signin').addEventListener('submit', (event) => { event.preventDefault(); signIn(event.target); });
  document.querySelectorAll('.sign-out').forEach((b) => b.addEventListener('click', signOut));
  $('#restore-all').addEventListener('click', restoreAll);
  let typing = null;
  $('#log-filters').addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(refilter, 350); });
  $('#log-filters').addEventListener('submit', (event) => { event.preventDefault(); clearTimeout(typing); refilter(); });
  $('#log-pause').addEventListener('click', togglePause);
  $('#logs').addEventListener('click', (event) => {
    const button = event.target.closest('button.trace');
    if (button) { $('#log-trace').value = button.dataset.trace; refilter(); }
  });
  $('#trace-search').addEventListener('submit', (event) => { event.preventDefault(); searchTraces(event.target); });
  $('#waterfall').addEventListener('click', (event) => {
    const row = event.target.closest('[data-span]');
    if (row) selectSpan(row.dataset.span);
  });
  $('#waterfall').addEventListener('keydown', waterfallKeys);
  route();
});
