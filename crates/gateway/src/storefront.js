// The storefront's behaviour: browse, search, sign up and in, the cart, checkout and my orders,
// all through the public API on this origin. Pages are built with DOM calls (never innerHTML), so
// names from the API cannot inject markup; tokens live in sessionStorage, for this tab only.
'use strict';

const $ = (selector) => document.querySelector(selector);

/** An element with attributes (`on*` ones become listeners) and children (strings or nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.flat().filter((c) => c != null));
  return node;
}

/** `{amount_minor, currency}` as `EUR 12.50`, with integer and string work only: no floats. */
function money({ amount_minor: minor, currency }) {
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch { /* an unknown code: assume cents */ }
  let text = String(Math.abs(minor));
  if (digits > 0) {
    text = text.padStart(digits + 1, '0');
    text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }
  return `${currency} ${minor < 0 ? '-' : ''}${text}`;
}

// ---- Messages: every outcome and error in words, in one live region.

class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `the shop answered ${status}`);
    this.status = status;
    this.errors = Array.isArray(body.errors) ? body.errors : [];
  }
}

function say(text, kind = 'ok') {
  const box = $('#message');
  box.className = kind;
  box.replaceChildren(text);
}

function fail(error) {
  if (!(error instanceof Problem)) {
    console.error(error);
    say('The shop could not be reached. Check your connection and try again.', 'error');
    return;
  }
  const box = $('#message');
  box.className = 'error';
  box.replaceChildren(error.message);
  if (error.errors.length) {
    box.append(el('ul', {}, error.errors.map((e) => el('li', {}, `${e.field}: ${e.message}`))));
  }
}

// ---- The session and the API client.

const session = {
  get access() { return sessionStorage.getItem('nubo.access'); },
  get refresh() { return sessionStorage.getItem('nubo.refresh'); },
  get email() { return sessionStorage.getItem('nubo.email'); },
  start(tokens, email) {
    sessionStorage.setItem('nubo.access', tokens.access_token);
    sessionStorage.setItem('nubo.refresh', tokens.refresh_token);
    if (email) sessionStorage.setItem('nubo.email', email);
  },
  end() { ['nubo.access', 'nubo.refresh', 'nubo.email'].forEach((k) => sessionStorage.removeItem(k)); },
};

// A refresh token is single use and reusing one revokes its whole family: calls that hit 401
// together share one refresh.
let refreshing = null;
function refreshTokens() {
  refreshing ??= (async () => {
    try {
      const res = await fetch('/api/v1/identity/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: session.refresh }),
      });
      if (!res.ok) return false;
      session.start(await res.json());
      return true;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Calls the API; answers `{status, body}` for a 2xx, throws a `Problem` for anything else. */
async function api(path, { method = 'GET', body, headers = {}, auth = false } = {}) {
  const send = () => fetch(`/api/v1${path}`, {
    method,
    headers: {
      ...headers,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(auth && session.access ? { authorization: `Bearer ${session.access}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let res = await send();
  if (res.status === 401 && auth && session.refresh) {
    if (await refreshTokens()) res = await send();
    else signedOut('Your session has ended: please log in again.');
  }
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Problem(res.status, parsed ?? {});
  return { status: res.status, body: parsed };
}

// ---- Views.

function show(view) {
  for (const section of document.querySelectorAll('main > section')) {
    section.hidden = section.id !== `view-${view}`;
  }
  for (const button of document.querySelectorAll('header [data-view]')) {
    button.classList.toggle('active', button.dataset.view === view);
    if (button.dataset.view === view) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  if (view === 'cart') loadCart().catch(fail);
  if (view === 'orders') loadOrders().catch(fail);
}

function renderSession() {
  const signedIn = Boolean(session.access);
  document.querySelectorAll('.signed-in').forEach((n) => { n.hidden = !signedIn; });
  document.querySelectorAll('.signed-out').forEach((n) => { n.hidden = signedIn; });
  $('#who').textContent = session.email ?? '';
}

function signedOut(why) {
  session.end();
  renderSession();
  $('#cart-button').textContent = 'Cart';
  if (why) say(why, 'error');
}

// ---- Browsing and search.

const browse = { category: null, query: '', page: 1 };

async function loadCategories() {
  const { body: list } = await api('/categories');
  const all = [{ category: null, name: 'All', products: list.reduce((n, c) => n + c.products, 0) }, ...list];
  $('#categories').replaceChildren(...all.map((c) => el('button', {
    type: 'button',
    class: !browse.query && c.category === browse.category ? 'active' : null,
    'aria-pressed': String(!browse.query && c.category === browse.category),
    onclick: () => { Object.assign(browse, { category: c.category, query: '', page: 1 }); loadProducts().catch(fail); },
  }, `${c.name} (${c.products})`)));
}

async function loadProducts() {
  const params = new URLSearchParams({ page: browse.page, per_page: 24 });
  if (browse.category) params.set('category', browse.category);
  if (browse.query) params.set('q', browse.query);
  const path = browse.query ? '/products/search' : '/products';
  const { body: page } = await api(`${path}?${params}`);
  $('#shop-title').textContent = browse.query ? `Products matching “${browse.query}”` : 'Products';
  const cards = page.items.map((p) => el('article', { class: 'card product', 'data-sku': p.sku },
    el('h3', {}, p.name),
    el('div', { class: 'sku' }, `${p.sku} · ${p.category}`),
    el('p', {}, p.description),
    el('div', { class: 'price' }, money(p.price)),
    el('button', { type: 'button', 'aria-label': `Add ${p.name} to the cart`, onclick: () => addToCart(p).catch(fail) }, 'Add to cart')));
  $('#products').replaceChildren(...(cards.length ? cards : [el('p', {}, 'No products found.')]));
  const pages = Math.max(1, Math.ceil(page.total / page.per_page));
  $('#pager').replaceChildren(`Page ${page.page} of ${pages} · ${page.total} products `,
    page.page > 1 ? el('button', { type: 'button', onclick: () => { browse.page--; loadProducts().catch(fail); } }, 'Previous') : null,
    page.page < pages ? el('button', { type: 'button', onclick: () => { browse.page++; loadProducts().catch(fail); } }, 'Next') : null);
  await loadCategories();
}

// ---- Account.

async function logIn(email, password) {
  const { body } = await api('/identity/login', { method: 'POST', body: { email, password } });
  session.start(body, email);
  renderSession();
  say(`Welcome back, ${email}.`);
  show('shop');
  loadCart().catch(fail);
}

async function logOut() {
  const refresh = session.refresh;
  signedOut();
  show('shop');
  say('You are logged out.');
  if (refresh) await api('/identity/logout', { method: 'POST', body: { refresh_token: refresh } });
}

// ---- The cart.

function needLogin() {
  if (session.access) return false;
  say('Log in or sign up to use the cart.', 'error');
  show('account');
  return true;
}

async function addToCart(product) {
  if (needLogin()) return;
  await api('/cart/lines', { method: 'POST', auth: true, body: { sku: product.sku, quantity: 1 } });
  say(`${product.name} is in your cart.`);
  await loadCart();
}

async function setQuantity(sku, quantity) {
  await api(`/cart/lines/${encodeURIComponent(sku)}`, { method: 'PUT', auth: true, body: { quantity } });
  say(`Quantity of ${sku} is now ${quantity}.`);
  await loadCart();
}

async function removeLine(sku) {
  await api(`/cart/lines/${encodeURIComponent(sku)}`, { method: 'DELETE', auth: true });
  say(`${sku} is out of your cart.`);
  await loadCart();
}

async function loadCart() {
  if (!session.access) {
    $('#cart').replaceChildren('Log in to see your cart.');
    $('#checkout').hidden = true;
    return;
  }
  const { body: cart } = await api('/cart', { auth: true });
  const count = cart.lines.reduce((n, l) => n + l.quantity, 0);
  $('#cart-button').textContent = `Cart (${count})`;
  $('#checkout').hidden = cart.lines.length === 0;
  if (!cart.lines.length) {
    $('#cart').replaceChildren(el('p', { id: 'cart-empty' }, 'Your cart is empty.'));
    return;
  }
  const rows = cart.lines.map((line) => {
    const input = el('input', { type: 'number', min: 1, max: 1000, value: line.quantity, id: `qty-${line.sku}` });
    return el('tr', { 'data-sku': line.sku },
      el('td', {}, line.name ?? line.sku, line.available ? null : ' (no longer sold)'),
      el('td', {}, line.unit_price ? money(line.unit_price) : '–'),
      el('td', {}, el('label', { for: input.id, class: 'sku' }, `Quantity of ${line.sku} `), input,
        el('button', { type: 'button', onclick: () => setQuantity(line.sku, Number(input.value)).catch(fail) }, 'Update')),
      el('td', { class: 'line-total' }, line.line_total ? money(line.line_total) : '–'),
      el('td', {}, el('button', { type: 'button', 'aria-label': `Remove ${line.sku}`, onclick: () => removeLine(line.sku).catch(fail) }, 'Remove')));
  });
  $('#cart').replaceChildren(
    el('table', {},
      el('thead', {}, el('tr', {}, ['Product', 'Unit price', 'Quantity', 'Line total', ''].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)),
    el('p', { class: 'total', id: 'cart-total' }, `Total: ${money(cart.total)}`));
}

// ---- Checkout.

// One key per checkout attempt. It is kept when the outcome is unknown (a network error or a
// 5xx), so retrying, or a second click, can only ever answer with the same order.
let checkoutKey = null;

async function checkout(form) {
  const data = new FormData(form);
  const card = {
    number: data.get('number'),
    expiry_month: Number(data.get('expiry_month')),
    expiry_year: Number(data.get('expiry_year')),
    cvc: data.get('cvc'),
  };
  checkoutKey ??= crypto.randomUUID();
  const pay = $('#pay');
  pay.disabled = true;
  say('Placing your order…');
  try {
    let { body: order } = await api('/checkout', {
      method: 'POST', auth: true, body: { card }, headers: { 'idempotency-key': checkoutKey },
    });
    checkoutKey = null;
    form.reset();
    if (!decided(order)) say('Your payment is being processed…');
    order = await follow(order, decided, 120);
    showOutcome(order);
    if (order.status === 'confirmed') await follow(order, finished, 30);
  } catch (error) {
    if (error instanceof Problem && error.status < 500) checkoutKey = null;
    fail(error);
  } finally {
    pay.disabled = false;
    await loadCart().catch(fail);
  }
}

/** Polls the order until `done(order)`; gives up after `seconds` and answers the latest. */
async function follow(order, done, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (!done(order) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    order = (await api(`/orders/${order.order_id}`, { auth: true })).body;
  }
  return order;
}

const decided = (order) => order.status === 'confirmed' || order.status === 'cancelled';
// A confirmed order still captures the money, commits the stock and then empties the cart.
const finished = (order) => order.state === 'completed' || order.state === 'cancelled';

function outcomeText(order) {
  switch (order.status) {
    case 'confirmed': return `Order confirmed: ${money(order.total)} paid. Thank you!`;
    case 'cancelled': return `Order cancelled: ${order.cancel_reason ?? 'no reason given'}.`;
    default: return 'Your order is still being processed: see My orders for its outcome.';
  }
}

function showOutcome(order) {
  const text = outcomeText(order);
  say(text, order.status === 'cancelled' ? 'error' : 'ok');
  $('#outcome').replaceChildren(el('p', { class: `status-${order.status}`, 'data-order': order.order_id }, text));
}

// ---- My orders.

async function loadOrders() {
  const { body: page } = await api('/orders', { auth: true });
  if (!page.items.length) {
    $('#orders').replaceChildren(el('p', {}, 'No orders yet.'));
    return;
  }
  $('#orders').replaceChildren(...page.items.map((order) => el('article', { class: 'card order', 'data-order': order.order_id },
    el('h3', {}, `Order ${order.order_id.slice(0, 8)} · ${new Date(order.created_at).toLocaleString()}`),
    el('p', {}, el('span', { class: `status status-${order.status}` }, order.status),
      ` · total ${money(order.total)}`,
      order.cancel_reason ? ` · ${order.cancel_reason}` : null,
      order.refunded ? ' · refunded' : null),
    el('ul', {}, order.lines.map((l) => el('li', {}, `${l.quantity} × ${l.name} (${l.sku}): ${money(l.line_total)}`))),
    el('ol', { class: 'steps', 'aria-label': 'Checkout steps' }, order.steps.map((s) =>
      el('li', {}, `${s.step}: ${s.outcome}`, s.detail ? ` (${s.detail})` : null))))));
}

// ---- Wiring.

function onSubmit(selector, handler) {
  $(selector).addEventListener('submit', (event) => {
    event.preventDefault();
    handler(event.target).catch(fail);
  });
}

document.addEventListener('DOMContentLoaded', () => {
  // The default value, not the current one: a reset after each order keeps it.
  $('#card-year').setAttribute('value', new Date().getFullYear() + 3);
  document.querySelectorAll('header [data-view]').forEach((b) => b.addEventListener('click', () => show(b.dataset.view)));
  $('#log-out').addEventListener('click', () => logOut().catch(fail));
  onSubmit('#search', async (form) => {
    Object.assign(browse, { query: form.q.value.trim(), category: null, page: 1 });
    show('shop');
    await loadProducts();
  });
  onSubmit('#log-in', (form) => logIn(form.email.value, form.password.value));
  onSubmit('#sign-up', async (form) => {
    await api('/identity/signup', { method: 'POST', body: { email: form.email.value, password: form.password.value } });
    $('#login-email').value = form.email.value;
    say(`Your account ${form.email.value} is ready: log in with it.`);
    form.reset();
    $('#login-password').focus();
  });
  onSubmit('#checkout', checkout);
  renderSession();
  show('shop');
  loadProducts().catch(fail);
  loadCart().catch(fail);
});
