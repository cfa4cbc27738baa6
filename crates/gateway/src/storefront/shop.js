// The shop's core: the DOM builder, money, messages, the API client and the session, and the
// router that draws a view for each URL. The views live in shop-*.js, loaded after this file, and
// register their paths with `route()` (catalog: browsing and product images; cart; account: also
// the form helpers; checkout: also following an order). Pages are built with DOM calls (never innerHTML), so names
// from the API cannot inject markup. The session lives in localStorage, so a new tab is signed in.
'use strict';

const SHOP_NAME = 'nubo shop';
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** An element with attributes (`on*` functions become listeners) and children (strings or nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return node;
}

// ---- Money: `{amount_minor, currency}` as `EUR 1,012.50`, with integers and strings only.

function money(value) {
  if (!value || !Number.isInteger(value.amount_minor)) return '–';
  const { amount_minor: minor, currency } = value;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch { /* an unknown code: assume cents */ }
  let whole = String(Math.abs(minor));
  let fraction = '';
  if (digits > 0) {
    whole = whole.padStart(digits + 1, '0');
    fraction = `.${whole.slice(-digits)}`;
    whole = whole.slice(0, -digits);
  }
  whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${currency} ${minor < 0 ? '-' : ''}${whole}${fraction}`;
}

/** `a + b`, or null when either is missing or they are in different currencies. */
function addMoney(a, b) {
  if (!a || !b || a.currency !== b.currency) return null;
  return { amount_minor: a.amount_minor + b.amount_minor, currency: a.currency };
}

// ---- Messages: the latest outcome, in words for a shopper, in one live region.

function say(content, kind = 'ok') {
  const box = $('#message');
  const parts = [content].flat().filter((c) => c != null && c !== '');
  box.className = parts.length ? `message ${kind}` : 'message';
  box.replaceChildren(...parts);
}

class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || `answered ${status}`);
    this.status = status;
    this.kind = String(body?.type ?? '').split('/').pop();
    this.detail = body?.detail ?? '';
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}
/** The shop could not be reached, or did not answer in time. */
class Unreachable extends Error {}
/** The session is over (its refresh token refused): the shopper must log in again. */
class SessionEnded extends Error {}

const isAbort = (error) => error?.name === 'AbortError';

function sentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return '';
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(s) ? s : `${s}.`;
}

/** What went wrong, for a shopper: never a status code, a service's name or a field's path. */
function explain(error) {
  if (error instanceof Unreachable) return 'We could not reach the shop. Check your connection and try again.';
  if (error instanceof SessionEnded) return 'Your session has ended. Please log in again.';
  if (error instanceof Problem) {
    if (error.status === 429) return 'That was a lot of tries in a short time. Please wait a minute and try again.';
    if (error.status >= 500) return 'The shop is having trouble right now. Please try again in a moment.';
    if (error.status === 422) return 'Please check the details below.';
    return sentence(error.detail) || 'That did not work. Please try again.';
  }
  console.error(error);
  return 'Something went wrong. Please try again.';
}

/** Field errors in words: `{field: [element id, label]}` names the fields a form knows. */
function fieldMessages(error, fields = {}) {
  return (error?.errors ?? []).map(({ field, message }) => {
    const known = fields[field];
    return { id: known?.[0], text: known ? `${known[1]}: ${message}` : sentence(message) };
  });
}

/** Shows `error` in the message region, with its field errors listed. */
function fail(error, fields = {}) {
  if (isAbort(error)) return;
  const list = fieldMessages(error, fields);
  say([explain(error), list.length ? el('ul', {}, list.map((m) => el('li', {}, m.text))) : null], 'error');
}

function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? ''
    : date.toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric' });
}

// ---- The session: tokens in localStorage, shared by every tab of the shop.

const SESSION_KEYS = ['nubo.access', 'nubo.refresh', 'nubo.email'];
const stored = (key) => { try { return localStorage.getItem(key); } catch { return null; } };
const store = (key, value) => {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch { /* storage is off: the session lasts as long as this page */ }
};

/** The claims of an access token, or null when it cannot be read. */
function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '=')));
  } catch {
    return null;
  }
}

const session = {
  get access() { return stored('nubo.access'); },
  get refresh() { return stored('nubo.refresh'); },
  get signedIn() { return Boolean(this.refresh || this.access); },
  get email() { return stored('nubo.email') ?? claims(this.access)?.email ?? ''; },
  /** Whether the access token runs out within 15 seconds (false when it cannot be read). */
  get expiring() {
    const exp = claims(this.access)?.exp;
    return Number.isFinite(exp) && exp * 1000 < Date.now() + 15000;
  },
  start(tokens, email) {
    store('nubo.access', tokens.access_token);
    store('nubo.refresh', tokens.refresh_token);
    const known = claims(tokens.access_token)?.email ?? email;
    if (known) store('nubo.email', known);
  },
  end() { SESSION_KEYS.forEach((key) => store(key, null)); },
};

function renderSession() {
  const signedIn = session.signedIn;
  $$('.signed-in').forEach((node) => { node.hidden = !signedIn; });
  $$('.signed-out').forEach((node) => { node.hidden = signedIn; });
  $('#who').textContent = signedIn ? session.email : '';
}

const sessionHooks = [];
/** Runs `hook` whenever the shopper signs in or out, in this tab or another. */
function onSessionChange(hook) { sessionHooks.push(hook); }

let sessionSeen = '';
const sessionSignature = () => `${session.signedIn} ${session.email}`;

function sessionChanged() {
  sessionSeen = sessionSignature();
  renderSession();
  for (const hook of sessionHooks) hook();
}

function signedOut() {
  session.end();
  sessionChanged();
}

// A refresh token is single use, and reusing one revokes its whole family: calls that meet a 401
// together share one refresh, and tabs take turns through a lock (where the browser has one).
let refreshing = null;
function refreshTokens(stale) {
  refreshing ??= (async () => {
    const attempt = async () => {
      if (session.access && session.access !== stale) return true; // someone refreshed already
      const token = session.refresh;
      if (!token) return false;
      let res;
      try {
        res = await fetch('/api/v1/identity/refresh', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh_token: token }),
        });
      } catch {
        throw new Unreachable();
      }
      if (res.status >= 500 || res.status === 429) throw new Problem(res.status, {});
      if (!res.ok) return false;
      session.start(await res.json());
      return true;
    };
    try {
      return navigator.locks ? await navigator.locks.request('nubo.refresh', attempt) : await attempt();
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

const API_PATIENCE_MS = 15000;

/** Calls the API; answers the parsed body of a 2xx, throws a `Problem`, `Unreachable` or `SessionEnded`. */
async function api(path, { method = 'GET', body, headers = {}, auth = false, signal } = {}) {
  if (auth && !session.signedIn) throw new SessionEnded();
  if (auth && session.expiring) await refreshTokens(session.access).catch(() => false);
  const send = async () => {
    const token = session.access;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), API_PATIENCE_MS);
    const stop = () => timeout.abort();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      const res = await fetch(`/api/v1${path}`, {
        method,
        signal: timeout.signal,
        headers: {
          accept: 'application/json',
          ...headers,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(auth && token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { res, text, token };
    } catch {
      if (signal?.aborted) throw new DOMException('The view was left', 'AbortError');
      throw new Unreachable();
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    }
  };
  let answer = await send();
  if (answer.res.status === 401 && auth) {
    if (await refreshTokens(answer.token)) answer = await send();
    if (answer.res.status === 401) {
      signedOut();
      throw new SessionEnded();
    }
  }
  let parsed = null;
  try { parsed = answer.text ? JSON.parse(answer.text) : null; } catch { parsed = null; }
  if (!answer.res.ok) throw new Problem(answer.res.status, parsed);
  return parsed;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(new DOMException('The view was left', 'AbortError')); return; }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('The view was left', 'AbortError'));
    }, { once: true });
  });
}

// ---- The router: a view for each path, real URLs, Back and Forward.

const routes = [];

/**
 * Registers `view(ctx)` for `path` (`:name` parts become `ctx.params.name`). `signIn`, when set,
 * is what a guest is told on the way to the account page.
 */
function route(path, view, { signIn = null } = {}) {
  const names = [];
  const source = path.replace(/:(\w+)/g, (_, name) => { names.push(name); return '([^/]+)'; });
  routes.push({ pattern: new RegExp(`^${source}/?$`), names, view, signIn });
}

function matchRoute(pathname) {
  for (const r of routes) {
    const m = r.pattern.exec(pathname);
    if (!m) continue;
    try {
      return { route: r, params: Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
    } catch {
      return null;
    }
  }
  return null;
}

/** Whether the page at `pathname` is only for a signed-in shopper. */
const needsSession = (pathname) => Boolean(matchRoute(pathname)?.route.signIn);

let current = null;
let scrollTarget = 0;

/** Draws the view for the current location; `flash` is the message it opens with. */
async function render(flash) {
  current?.controller.abort();
  const controller = new AbortController();
  const url = new URL(location.href);
  const found = matchRoute(url.pathname);
  const ctx = {
    url, params: found?.params ?? {}, query: url.searchParams, signal: controller.signal, shown: false,
    /** The view's h1, focusable by script: it receives focus when the view is drawn. */
    heading: (...text) => el('h1', { tabindex: '-1' }, ...text),
    /** Draws the view: `title` for the tab, and an h1 unless `content` brings its own. */
    page(title, ...content) {
      if (controller.signal.aborted) return;
      const view = $('#view');
      const nodes = content.flat().filter(Boolean);
      const own = nodes.some((n) => n.matches?.('h1') || n.querySelector?.('h1'));
      view.replaceChildren(...(own ? [] : [ctx.heading(title)]), ...nodes);
      view.removeAttribute('aria-busy');
      document.title = `${title} · ${SHOP_NAME}`;
      if (!ctx.shown) {
        ctx.shown = true;
        window.scrollTo(0, scrollTarget);
        $('h1', view)?.focus({ preventScroll: true });
      }
    },
    /** Draws the same view again, keeping focus where it is. */
    again: () => run(ctx, found),
  };
  current = { controller, ctx };
  say(flash?.text ?? flash ?? '', flash?.kind ?? 'ok');
  markCurrentLinks(url.pathname);
  $('#q').value = url.pathname === '/search' ? (url.searchParams.get('q') ?? '') : '';
  if (found?.route.signIn && !session.signedIn) {
    const next = url.pathname + url.search;
    go(`/account?next=${encodeURIComponent(next)}`, { replace: true, flash: { text: found.route.signIn, kind: 'info' } });
    return;
  }
  const loading = setTimeout(() => {
    if (ctx.shown || controller.signal.aborted) return;
    $('#view').setAttribute('aria-busy', 'true');
    $('#view').replaceChildren(el('div', { class: 'loading' },
      el('span', { class: 'spinner', 'aria-hidden': 'true' }), el('p', {}, 'Loading…')));
  }, 250);
  await run(ctx, found);
  clearTimeout(loading);
}

async function run(ctx, found) {
  try {
    await (found ? found.route.view(ctx) : notFound(ctx));
  } catch (error) {
    if (ctx.signal.aborted || isAbort(error)) return;
    if (error instanceof SessionEnded) {
      const next = ctx.url.pathname + ctx.url.search;
      go(`/account?next=${encodeURIComponent(next)}`, { replace: true, flash: { text: explain(error), kind: 'info' } });
    } else if (error instanceof Problem && error.status === 404) {
      notFound(ctx);
    } else {
      trouble(ctx, error);
    }
  }
}

function notFound(ctx, what = 'page') {
  ctx.page('Page not found',
    ctx.heading(`We could not find this ${what}`),
    el('p', {}, 'It may have moved, or the link may be mistyped.'),
    el('p', {}, el('a', { class: 'button', href: '/' }, 'Go to the home page')));
}

function trouble(ctx, error) {
  const offline = error instanceof Unreachable;
  ctx.page(offline ? 'Cannot reach the shop' : 'Something went wrong',
    ctx.heading(offline ? 'We cannot reach the shop right now' : 'This page did not load'),
    el('div', { class: 'notice error trouble' },
      el('p', {}, explain(error)),
      el('p', {}, el('button', { type: 'button', class: 'button', 'data-retry': '', onclick: () => render() }, 'Try again'))));
}

function go(path, { replace = false, flash = null } = {}) {
  history.replaceState({ ...(history.state ?? {}), scroll: window.scrollY }, '');
  if (replace) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  scrollTarget = 0;
  render(flash);
}

function markCurrentLinks(pathname = location.pathname) {
  for (const a of $$('header a[href]')) {
    if (new URL(a.href).pathname === pathname) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // On a phone the categories scroll sideways: the current one comes into sight.
  const here = $('.category-nav a[aria-current]');
  const list = here?.closest('ul');
  if (here && list.scrollWidth > list.clientWidth) {
    const box = list.getBoundingClientRect();
    const link = here.getBoundingClientRect();
    if (link.left < box.left || link.right > box.right) list.scrollLeft += link.left - box.left - 16;
  }
}

/** Same-origin links to the shop's pages stay in the page; the API, assets and console do not. */
function shopUrl(a) {
  if (a.target && a.target !== '_self') return null;
  if (a.hasAttribute('download') || (a.getAttribute('href') ?? '').startsWith('#')) return null;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || /^\/(api|assets|ops)(\/|$)/.test(url.pathname)) return null;
  return url;
}

const startHooks = [];
/** Runs `hook` once the page and every script are loaded, before the first view. */
function onStart(hook) { startHooks.push(hook); }

document.addEventListener('DOMContentLoaded', () => {
  history.scrollRestoration = 'manual';
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = event.target.closest('a[href]');
    const url = a && shopUrl(a);
    if (!url) return;
    event.preventDefault();
    go(url.pathname + url.search);
  });
  window.addEventListener('popstate', (event) => {
    if (current && location.pathname + location.search === current.ctx.url.pathname + current.ctx.url.search) {
      return; // only the #fragment moved: the browser scrolls, the view stays
    }
    scrollTarget = event.state?.scroll ?? 0;
    render();
  });
  $('#search').addEventListener('submit', (event) => {
    event.preventDefault();
    const q = $('#q').value.trim();
    go(q ? `/search?q=${encodeURIComponent(q)}` : '/search');
  });
  // Another tab signed in or out: this one follows.
  // (A refresh there rotates the tokens and changes nothing here.)
  window.addEventListener('storage', (event) => {
    if (event.key !== null && !SESSION_KEYS.includes(event.key)) return;
    if (sessionSignature() === sessionSeen) return;
    sessionChanged();
    if (needsSession(location.pathname) || ['/cart', '/account'].includes(location.pathname)) render();
  });
  // Back online while the view says it could not reach the shop: try again.
  window.addEventListener('online', () => { if ($('#view [data-retry]')) render(); });
  sessionSeen = sessionSignature();
  renderSession();
  for (const hook of startHooks) hook();
  render();
});
