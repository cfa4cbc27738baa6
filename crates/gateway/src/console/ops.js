// nubo's ops console, its core: the API client with its token refresh, sign-in and sign-out, the
// views' routing and history, the shell (navigation, banner, focus), the polling, and the helpers
// every view shares. The views live in the files loaded after this one (ops-map.js, ops-logs.js,
// ops-traces.js, ops-faults.js, ops-board.js): each takes what it needs from the one namespace
// `window.Ops` and registers its views there. Like the storefront, pages are built with DOM calls
// (never innerHTML), so nothing from the API can inject markup; the tokens live in sessionStorage,
// for this tab only.
'use strict';

(() => {
const $ = (selector) => document.querySelector(selector);
const SVG = 'http://www.w3.org/2000/svg';
const POLL_MS = 2000;
const TRACE_POLL_MS = 5000;

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

// ---- Pieces more than one view shows.
const fact = (term, value) => [el('dt', {}, term), el('dd', {}, value)];
const short = (id) => String(id).slice(0, 8);
const traceHref = (id) => `/ops/traces/${encodeURIComponent(id)}`;
/** The traces view's search for the traces of one order. */
const orderTracesHref = (orderId) => `/ops/traces?${new URLSearchParams({ order_id: orderId })}`;


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

// ---- Views: each file registers its own with `register`. A view has a `title` (text, or a
// function of the route) and `render` (what it holds, drawn again on every route and overview);
// it may name the nav link it sits under (`parent`), poll while open (`tick` every 2 s, `slowTick`
// every 5 s) and need the overview: 'always' fresh, or 'once' for a service filter. A file may
// also hook `onRoute` (every route), `forget` (sign-out) and `wire` (once the page is ready).
const views = { missing: { title: 'Page not found' } };
const parts = [];
function register({ views: named = {}, ...hooks }) { Object.assign(views, named); parts.push(hooks); }
const each = (hook) => parts.forEach((part) => part[hook]?.());

// ---- State, views and navigation: every view has a real URL under /ops.
// The view, the last overview answer, whether the last overview request failed, and whether the
// account turned out not to be an administrator's.
const state = { view: { name: 'map' }, overview: null, failed: false, denied: false };
const PLAIN = { '/ops': 'map', '/ops/checkouts': 'checkouts', '/ops/logs': 'logs', '/ops/traces': 'traces', '/ops/faults': 'faults' };

function parse(pathname) {
  const path = pathname.replace(/\/+$/, '');
  const plain = PLAIN[path];
  const [, kind, name] = path.match(/^\/ops\/(services|traces)\/([^/]+)$/) ?? [];
  try {
    if (plain) return { name: plain };
    if (kind === 'services') return { name: 'service', service: decodeURIComponent(name) };
    return kind ? { name: 'trace', id: decodeURIComponent(name) } : { name: 'missing' };
  } catch { return { name: 'missing' }; } // a malformed escape
}

function title() {
  const text = views[state.view.name]?.title;
  return (typeof text === 'function' ? text(state.view) : text) ?? 'Console';
}

function show(id, title, moveFocus) {
  for (const section of document.querySelectorAll('main > section')) section.hidden = section.id !== id;
  document.title = `${title} · nubo ops`;
  if (moveFocus) document.querySelector(`#${id} h2`).focus();
}

function markNav(name) {
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else if (link.dataset.view === views[name]?.parent) link.setAttribute('aria-current', 'true');
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
  each('onRoute');
  render();
  show(`view-${name}`, title(), moveFocus);
  startPolling();
}

function navigate(href) {
  if (href !== location.pathname + location.search) history.pushState(null, '', href);
  route(true);
}

const render = () => views[state.view.name]?.render?.();
const pending = () => (state.failed ? 'The services could not be loaded yet: the console keeps trying.' : 'Loading…');

// ---- Polling: every 2 s the overview (as the open view needs it) and the open view's `tick`,
// every 5 s its `slowTick`; nothing while the tab is hidden.
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
  const view = views[state.view.name];
  if (view?.overview === 'always' || (view?.overview === 'once' && !state.overview)) refreshOverview();
  view?.tick?.();
}

const slowTick = () => views[state.view.name]?.slowTick?.();

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
  each('forget');
  $('#signin-message').textContent = why;
  route(true);
}
const deny = () => { state.denied = true; route(true); };

async function signOut() {
  const refresh = session.refresh;
  signedOut('You are signed out.');
  if (refresh) await api('/identity/logout', { method: 'POST', auth: false, body: { refresh_token: refresh } }).catch(() => {});
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
  each('wire');
  route();
});

// What the views' files take: a view reads `state` (the route, the overview) and never reassigns it.
window.Ops = {
  $, el, svg, styled, keepFocus, known, num, pct, ms, spanMs, duration, when, fact, short, traceHref, orderTracesHref,
  Problem, refused, report, api, register, state, title, route, navigate, pending, freshOverview,
};
})();
