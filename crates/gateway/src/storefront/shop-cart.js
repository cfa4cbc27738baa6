// The cart. A guest's lives in this browser (localStorage `nubo.guest-cart`, `[{sku, quantity}]`,
// priced from the catalog) and joins the account's cart at sign-in; a signed-in shopper's is the
// API's. This file also keeps the header's count, and draws the cart page, which is locked while
// the shopper's latest order is still pending.
'use strict';

const GUEST_CART_KEY = 'nubo.guest-cart';
const MAX_LINE_QUANTITY = 1000;

const guestCart = {
  lines() {
    try {
      const raw = JSON.parse(localStorage.getItem(GUEST_CART_KEY) ?? '[]');
      return (Array.isArray(raw) ? raw : [])
        .filter((l) => typeof l?.sku === 'string' && l.sku && Number.isInteger(l.quantity) && l.quantity > 0)
        .map((l) => ({ sku: l.sku, quantity: Math.min(l.quantity, MAX_LINE_QUANTITY) }));
    } catch {
      return [];
    }
  },
  save(lines) {
    store(GUEST_CART_KEY, lines.length ? JSON.stringify(lines) : null);
    return lines;
  },
  add(sku, quantity) {
    const lines = this.lines();
    const line = lines.find((l) => l.sku === sku);
    if (line) line.quantity = Math.min(MAX_LINE_QUANTITY, line.quantity + quantity);
    else lines.push({ sku, quantity: Math.min(MAX_LINE_QUANTITY, quantity) });
    return this.save(lines);
  },
  set(sku, quantity) { return this.save(this.lines().map((l) => (l.sku === sku ? { sku, quantity } : l))); },
  remove(sku) { return this.save(this.lines().filter((l) => l.sku !== sku)); },
  clear() { store(GUEST_CART_KEY, null); },
};

const countOf = (lines) => lines.reduce((n, l) => n + l.quantity, 0);

function showCartCount(count) {
  $('#cart-link .cart-label').textContent = `Cart (${count})`;
}

async function refreshCartCount() {
  if (!session.signedIn) {
    showCartCount(countOf(guestCart.lines()));
    return;
  }
  try {
    showCartCount(countOf((await api('/cart', { auth: true })).lines));
  } catch { /* the count stays as it was until the next look */ }
}

/** Puts `quantity` of `product` in the cart: the account's when signed in, this browser's if not. */
async function addToCart(product, quantity = 1) {
  if (session.signedIn) {
    try {
      const cart = await api('/cart/lines', { method: 'POST', auth: true, body: { sku: product.sku, quantity } });
      showCartCount(countOf(cart.lines));
      return;
    } catch (error) {
      if (!(error instanceof SessionEnded)) throw error;
    }
  }
  showCartCount(countOf(guestCart.add(product.sku, quantity)));
}

const buttonLabels = new WeakMap();

/**
 * `addToCart` from a button, saying so in the message region (and on the button, for a moment);
 * a refused quantity is shown next to its field when `form` has it.
 */
async function addAndTell(product, quantity, button, { form = null, fields = {} } = {}) {
  button.disabled = true;
  if (form) clearFieldErrors(form);
  try {
    await addToCart(product, quantity);
    say([`Added ${quantity > 1 ? `${quantity} × ` : ''}${product.name} to your cart. `, el('a', { href: '/cart' }, 'View cart')]);
    if (!buttonLabels.has(button)) buttonLabels.set(button, [...button.childNodes]);
    button.replaceChildren('Added ✓');
    clearTimeout(button.dataset.timer);
    button.dataset.timer = setTimeout(() => button.replaceChildren(...buttonLabels.get(button)), 1800);
  } catch (error) {
    if (form) markFields(form, fieldMessages(error, fields));
    fail(error, fields);
  } finally {
    button.disabled = false;
  }
}

/** Moves the guest cart into the signed-in account's; answers a note for the shopper if it could not. */
async function mergeGuestCart() {
  const lines = guestCart.lines();
  if (!lines.length || !session.signedIn) return null;
  try {
    for (let i = 0; i < lines.length; i += 100) {
      await api('/cart/merge', { method: 'POST', auth: true, body: { lines: lines.slice(i, i + 100) } });
    }
    guestCart.clear();
    return null;
  } catch (error) {
    // Lines the shop will never take are dropped; anything else is tried again next time.
    if (error instanceof Problem && [400, 404, 422].includes(error.status)) guestCart.clear();
    return `We could not add what you picked before logging in to your cart. ${explain(error)}`;
  }
}

/** The shopper's latest order, or null (also when orders cannot be read: the cart still shows). */
async function latestOrder(signal) {
  try {
    return (await api('/orders?limit=1', { auth: true, signal })).items?.[0] ?? null;
  } catch (error) {
    if (isAbort(error) || error instanceof SessionEnded) throw error;
    return null;
  }
}

// ---- The guest cart, priced with the catalog's products.

const guestProducts = new Map();

async function guestCartView(signal) {
  const lines = guestCart.lines();
  await Promise.all(lines.filter((l) => !guestProducts.has(l.sku)).map(async (l) => {
    try {
      guestProducts.set(l.sku, await api(`/products/${encodeURIComponent(l.sku)}`, { signal }));
    } catch (error) {
      if (!(error instanceof Problem && error.status === 404)) throw error;
      guestProducts.set(l.sku, null);
    }
  }));
  return pricedGuestCart();
}

function pricedGuestCart() {
  let total = null;
  const lines = guestCart.lines().map(({ sku, quantity }) => {
    const product = guestProducts.get(sku);
    if (!product) return { sku, quantity, available: false, name: null, unit_price: null, line_total: null };
    const lineTotal = { amount_minor: product.price.amount_minor * quantity, currency: product.price.currency };
    total = total ? addMoney(total, lineTotal) ?? total : lineTotal;
    return { sku, quantity, available: true, name: product.name, unit_price: product.price, line_total: lineTotal, image: product.image };
  });
  return { lines, total: total ?? { amount_minor: 0, currency: 'EUR' } };
}

/** Sets a line's quantity (0 removes it); answers the cart as it is now. */
function setLine(sku, quantity) {
  if (!session.signedIn) {
    if (quantity) guestCart.set(sku, quantity);
    else guestCart.remove(sku);
    return Promise.resolve(pricedGuestCart());
  }
  const path = `/cart/lines/${encodeURIComponent(sku)}`;
  return quantity
    ? api(path, { method: 'PUT', auth: true, body: { quantity } })
    : api(path, { method: 'DELETE', auth: true });
}

// ---- The cart page.

route('/cart', async (ctx) => {
  const [cart, latest] = session.signedIn
    ? await Promise.all([api('/cart', { auth: true, signal: ctx.signal }), latestOrder(ctx.signal)])
    : [await guestCartView(ctx.signal), null];
  showCartCount(countOf(cart.lines));
  drawCart(ctx, cart, latest?.status === 'pending' ? latest : null);
});

function drawCart(ctx, cart, lock) {
  const notice = lock ? el('div', { id: 'cart-locked', class: 'notice info' },
    el('p', {}, el('strong', {}, 'Your cart is locked while we process your order. '),
      `You can change it again as soon as order ${lock.number} is through.`),
    el('p', {}, el('a', { href: `/orders/${encodeURIComponent(lock.number || lock.order_id)}` }, `Follow order ${lock.number}`))) : null;
  if (!cart.lines.length) {
    ctx.page('Your cart', notice, el('div', { id: 'cart-empty', class: 'empty-state' },
      el('p', {}, 'Your cart is empty.'),
      el('p', {}, el('a', { class: 'button primary', href: '/' }, 'Start shopping'))));
  } else {
    const rows = cart.lines.map((line) => cartRow(ctx, line, Boolean(lock)));
    const count = countOf(cart.lines);
    ctx.page('Your cart', notice, el('div', { class: 'cart-layout' },
      el('ul', { id: 'cart-lines', class: 'cart-lines', 'aria-label': 'Products in your cart' }, rows),
      el('aside', { class: 'summary-box', 'aria-labelledby': 'cart-summary-title' },
        el('h2', { id: 'cart-summary-title' }, 'Summary'),
        el('p', { class: 'summary-count' }, `${count} ${count === 1 ? 'item' : 'items'}`),
        el('p', { id: 'cart-total', class: 'total-line' }, `Total: ${money(cart.total)}`),
        el('p', { class: 'hint' }, 'Delivery is chosen at checkout.'),
        el('a', { id: 'to-checkout', class: 'button primary wide', href: '/checkout', hidden: Boolean(lock) }, 'Check out'),
        session.signedIn ? null
          : el('p', { class: 'hint' }, 'You will log in or create an account before you pay; your cart comes with you.'),
        el('p', { class: 'continue' }, el('a', { href: '/' }, 'Continue shopping')))));
  }
  if (lock) watchLock(ctx, lock);
}

function cartRow(ctx, line, locked) {
  const name = line.name ?? line.sku;
  const href = `/products/${encodeURIComponent(line.sku)}`;
  const qtyId = `qty-${line.sku}`;
  const fields = { quantity: [qtyId, 'Quantity'] };
  const input = el('input', {
    id: qtyId, class: 'qty', type: 'number', inputmode: 'numeric', min: 1, max: MAX_LINE_QUANTITY, step: 1,
    value: line.quantity, disabled: locked || !line.available,
  });
  const remove = el('button', { type: 'button', class: 'remove link-button', disabled: locked, 'aria-label': `Remove ${name} from your cart` }, 'Remove');
  const row = el('li', { class: 'cart-line', 'data-sku': line.sku },
    el('div', { class: 'line-image' }, productImage(line.image ?? skuImageUrl(line.sku), name, { sizes: '96px', width: 320, height: 320 })),
    el('div', { class: 'line-info' },
      el('a', { class: 'line-name', href }, name),
      el('p', { class: line.available ? 'line-meta' : 'line-meta warning' },
        line.available ? `${money(line.unit_price)} each` : 'No longer sold: please remove it from your cart.')),
    el('div', { class: 'line-qty field' }, el('label', { for: qtyId }, 'Quantity', el('span', { class: 'visually-hidden' }, ` of ${name}`)), input),
    el('p', { class: 'line-total' }, el('span', { class: 'visually-hidden' }, 'Line total: '), line.line_total ? money(line.line_total) : '–'),
    el('div', { class: 'line-remove' }, remove));

  // A quantity goes out when the field is left, or after a pause in typing; changes go out one
  // at a time, in the order they were made.
  let queue = Promise.resolve();
  let sent = line.quantity;
  let pause = null;
  const push = (typing) => {
    clearTimeout(pause);
    const quantity = Number(input.value);
    if (typing && input.value === '') return;
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_LINE_QUANTITY) {
      const text = `Quantity of ${name}: enter a whole number from 1 to ${MAX_LINE_QUANTITY}`;
      markFields(row, [{ id: qtyId, text }]);
      say(sentence(text), 'error');
      return;
    }
    clearFieldErrors(row);
    if (quantity === sent) return;
    sent = quantity;
    queue = queue.then(async () => {
      updateCart(ctx, await setLine(line.sku, quantity));
      say(`${name}: the quantity is now ${quantity}.`);
    }).catch((error) => {
      sent = null;
      markFields(row, fieldMessages(error, fields));
      fail(error, fields);
    });
  };
  input.addEventListener('input', () => {
    clearTimeout(pause);
    pause = setTimeout(() => push(true), 700);
  });
  input.addEventListener('change', () => push(false));
  remove.addEventListener('click', async () => {
    remove.disabled = true;
    try {
      const cart = await setLine(line.sku, 0);
      const next = row.nextElementSibling ?? row.previousElementSibling;
      updateCart(ctx, cart);
      say(`${name} is no longer in your cart.`);
      (next?.isConnected ? $('.line-name', next) : $('#view h1'))?.focus();
    } catch (error) {
      remove.disabled = false;
      fail(error);
    }
  });
  return row;
}

/** The page follows the cart as the API answered it, without losing the shopper's place. */
function updateCart(ctx, cart) {
  showCartCount(countOf(cart.lines));
  if (!cart.lines.length) {
    drawCart(ctx, cart, null);
    return;
  }
  for (const row of $$('#cart-lines > li')) {
    const line = cart.lines.find((l) => l.sku === row.dataset.sku);
    if (!line) {
      row.remove();
      continue;
    }
    $('.line-total', row).lastChild.textContent = line.line_total ? money(line.line_total) : '–';
    const input = $('.qty', row);
    if (document.activeElement !== input) input.value = line.quantity;
  }
  const count = countOf(cart.lines);
  $('.summary-count').textContent = `${count} ${count === 1 ? 'item' : 'items'}`;
  $('#cart-total').textContent = `Total: ${money(cart.total)}`;
}

/** While the cart is locked, follows the order that locks it, and unlocks the page when it is done. */
function watchLock(ctx, lock) {
  followOrder(lock.number || lock.order_id, () => {}, ctx.signal).then(async (order) => {
    await ctx.again();
    refreshCartCount();
    say(order.status === 'cancelled'
      ? `Order ${lock.number} was cancelled. Your cart can be changed again.`
      : `Order ${lock.number} is confirmed. Your cart is ready for your next order.`);
  }).catch(() => { /* the view was left, or the session ended */ });
}

onStart(() => {
  if (session.signedIn && guestCart.lines().length) mergeGuestCart().finally(refreshCartCount);
  else refreshCartCount();
});
onSessionChange(refreshCartCount);
window.addEventListener('storage', (event) => {
  if (event.key === GUEST_CART_KEY && !session.signedIn) refreshCartCount();
});
