// Checkout, the order page, and following an order as it goes. The checkout form sends contact,
// address, delivery and card in one request under an Idempotency-Key that is kept while the
// outcome is unknown (so trying again can only ever answer with the same order), then goes to the
// order's page, which follows the order live, backing off from half a second to five, until it is
// finished.
'use strict';

// ---- Following an order (here, and in the cart while an order locks it).

/** Done moving: cancelled, or confirmed with everything after it (capture, stock, cart) done. */
const orderFinished = (order) => order.status === 'cancelled'
  || (order.status === 'confirmed' && order.state === 'completed');

/** Polls the order (0.5 s, growing to 5 s) and hands each answer to `update` until it is finished. */
async function followOrder(id, update, signal) {
  let delay = 500;
  for (;;) {
    await sleep(delay, signal);
    if (document.hidden) continue; // a tab in the background waits; its next look is soon enough
    delay = Math.min(5000, Math.round(delay * 1.6));
    try {
      const order = await api(`/orders/${encodeURIComponent(id)}`, { auth: true, signal });
      update(order, null);
      if (orderFinished(order)) return order;
    } catch (error) {
      if (isAbort(error) || error instanceof SessionEnded) throw error;
      update(null, error);
    }
  }
}

const STATUS_WORDS = { pending: 'Processing', confirmed: 'Confirmed', cancelling: 'Being cancelled', cancelled: 'Cancelled' };

function statusBadge(status, id = null) {
  return el('span', { id, class: `status status-${status}`, 'data-status': status }, STATUS_WORDS[status] ?? 'Processing');
}

// ---- The checkout page.

/** The API's field paths, as the form's fields and the labels a shopper reads. */
const CHECKOUT_FIELDS = {
  'contact.email': ['contact-email', 'Email'],
  'contact.phone': ['contact-phone', 'Mobile number'],
  'shipping.option': ['ship-options', 'Delivery'],
  'shipping.address.name': ['ship-name', 'Full name'],
  'shipping.address.line1': ['ship-line1', 'Address'],
  'shipping.address.line2': ['ship-line2', 'Apartment, suite, etc.'],
  'shipping.address.city': ['ship-city', 'City'],
  'shipping.address.postal_code': ['ship-postal', 'Postcode'],
  'shipping.address.country': ['ship-country', 'Country'],
  'card.number': ['card-number', 'Card number'],
  'card.expiry_month': ['card-month', 'Expiry month'],
  'card.expiry_year': ['card-year', 'Expiry year'],
  'card.cvc': ['card-cvc', 'Security code'],
};

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// One key per checkout attempt, dropped once the shop has answered for sure.
let checkoutKey = null;
// Orders just placed, so their page shows at once (and thanks the shopper).
const placedOrders = new Map();

let shippingInfo = null;
/** The delivery options and countries, read once. */
function shippingOptions(signal) {
  shippingInfo ??= api('/checkout/shipping-options', { signal }).catch((error) => {
    shippingInfo = null;
    throw error;
  });
  return shippingInfo;
}

/** What an option costs for these items: nothing once they reach its `free_over`. */
function shippingCost(option, items) {
  const free = option.free_over && items && option.free_over.currency === items.currency
    && items.amount_minor >= option.free_over.amount_minor;
  return free ? { amount_minor: 0, currency: option.price.currency } : option.price;
}

const priceWords = (price) => (price?.amount_minor === 0 ? 'Free' : money(price));

/** The browser's region, unless it is the US that most browsers say anyway; else Germany. */
function guessCountry(countries) {
  const region = (navigator.language ?? '').split('-')[1]?.toUpperCase();
  const known = (code) => countries.some((c) => c.code === code);
  if (region && region !== 'US' && known(region)) return region;
  return known('DE') ? 'DE' : countries[0]?.code;
}

function lineItem(line) {
  return el('li', {},
    productImage(skuImageUrl(line.sku), line.name ?? line.sku, { sizes: '56px', width: 320, height: 320, className: 'thumb' }),
    el('span', { class: 'summary-name' }, `${line.quantity} × ${line.name ?? line.sku}`),
    el('span', { class: 'summary-price' }, money(line.line_total)));
}

route('/checkout', async (ctx) => {
  const [cart, options, latest, email] = await Promise.all([
    api('/cart', { auth: true, signal: ctx.signal }),
    shippingOptions(ctx.signal),
    latestOrder(ctx.signal),
    session.email || api('/identity/me', { auth: true, signal: ctx.signal }).then((me) => me.email).catch(() => ''),
  ]);
  showCartCount(countOf(cart.lines));
  if (latest?.status === 'pending') {
    ctx.page('Checkout', el('div', { class: 'notice info' },
      el('p', {}, `Your order ${latest.number} is still being processed. You can check out again as soon as it is through.`),
      el('p', {}, el('a', { href: `/orders/${encodeURIComponent(latest.number)}` }, `Follow order ${latest.number}`))));
    return;
  }
  if (!cart.lines.length) {
    ctx.page('Checkout', el('div', { class: 'empty-state' },
      el('p', {}, 'Your cart is empty, so there is nothing to check out yet.'),
      el('p', {}, el('a', { class: 'button primary', href: '/' }, 'Start shopping'))));
    return;
  }
  if (cart.lines.some((l) => !l.available)) {
    ctx.page('Checkout', el('div', { class: 'notice error' },
      el('p', {}, 'Some products in your cart are no longer sold. Remove them from your cart, then check out.'),
      el('p', {}, el('a', { href: '/cart' }, 'Go to your cart'))));
    return;
  }
  drawCheckout(ctx, cart, options, email, latest);
}, { signIn: 'Log in or create an account to check out. Your cart comes with you.' });

/** The form, filled in with what the shopper's last order was sent with, if it had an address. */
function drawCheckout(ctx, cart, options, email, previous) {
  const input = (id, attrs = {}) => el('input', { id, name: id, type: 'text', ...attrs });
  const year = new Date().getFullYear();
  const was = previous?.shipping?.address ?? null;
  const picked = options.countries.some((c) => c.code === was?.country) ? was.country : guessCountry(options.countries);
  const option = options.options.some((o) => o.id === previous?.shipping?.option) ? previous.shipping.option : options.options[0]?.id;
  const choices = options.options.map((o) => {
    const cost = shippingCost(o, cart.total);
    return el('div', { class: 'choice' },
      el('input', { type: 'radio', name: 'shipping', id: `ship-${o.id}`, value: o.id, checked: o.id === option }),
      el('label', { for: `ship-${o.id}` },
        el('span', { class: 'choice-name' }, o.name),
        el('span', { class: 'choice-days' }, o.days),
        el('span', { class: 'choice-price' }, priceWords(cost)),
        o.free_over && cost.amount_minor !== 0 ? el('span', { class: 'choice-note' }, `Free for orders of ${money(o.free_over)} or more`) : null));
  });
  const formError = el('div', { class: 'notice error', hidden: true });
  const form = el('form', { id: 'checkout-form', class: 'checkout-form', novalidate: true },
    el('fieldset', { class: 'panel' }, el('legend', {}, 'Contact'),
      field('Email', input('contact-email', { type: 'email', autocomplete: 'email', value: email, required: true }),
        'For your order confirmation.'),
      field('Mobile number (optional)', input('contact-phone', { type: 'tel', autocomplete: 'tel', placeholder: '+49 151 23456789', value: previous?.contact?.phone }),
        'With the country code, for a text when your order is on its way.')),
    el('fieldset', { class: 'panel' }, el('legend', {}, 'Shipping address'),
      was ? el('p', { class: 'hint' }, 'As on your last order: change anything that is different this time.') : null,
      field('Full name', input('ship-name', { autocomplete: 'name', required: true, value: was?.name })),
      field('Address', input('ship-line1', { autocomplete: 'address-line1', required: true, value: was?.line1 })),
      field('Apartment, suite, etc. (optional)', input('ship-line2', { autocomplete: 'address-line2', value: was?.line2 || null })),
      el('div', { class: 'row' },
        field('Postcode', input('ship-postal', { autocomplete: 'postal-code', required: true, value: was?.postal_code })),
        field('City', input('ship-city', { autocomplete: 'address-level2', required: true, value: was?.city }))),
      field('Country', el('select', { id: 'ship-country', name: 'country', autocomplete: 'country', required: true },
        options.countries.map((c) => el('option', { value: c.code, selected: c.code === picked }, c.name))))),
    el('fieldset', { id: 'ship-options', class: 'panel choices', role: 'radiogroup' }, el('legend', {}, 'Delivery'), choices),
    el('fieldset', { class: 'panel' }, el('legend', {}, 'Payment'),
      el('div', { class: 'test-cards' },
        el('p', {}, el('strong', {}, 'This shop takes test cards only. '), 'Expiry date and security code are filled in for them.'),
        el('ul', {},
          el('li', {}, el('code', {}, '4242 4242 4242 4242'), ' is paid'),
          el('li', {}, el('code', {}, '4000 0000 0000 0002'), ' is declined'),
          el('li', {}, el('code', {}, '4000 0000 0000 9995'), ' is declined for lack of funds'),
          el('li', {}, el('code', {}, '4000 0000 0000 0119'), ' gets no answer from the bank, to see a slow payment'))),
      field('Card number', input('card-number', { inputmode: 'numeric', autocomplete: 'cc-number', placeholder: '1234 1234 1234 1234', maxlength: 23, required: true })),
      el('div', { class: 'row row-3' },
        field('Expiry month', input('card-month', { inputmode: 'numeric', autocomplete: 'cc-exp-month', placeholder: 'MM', maxlength: 2, value: '12', required: true })),
        field('Expiry year', input('card-year', { inputmode: 'numeric', autocomplete: 'cc-exp-year', placeholder: 'YYYY', maxlength: 4, value: String(year + 3), required: true })),
        field('Security code', input('card-cvc', { inputmode: 'numeric', autocomplete: 'cc-csc', placeholder: '123', maxlength: 4, value: '123', required: true })))),
    formError,
    el('p', { class: 'pay-line' }, 'To pay: ', el('strong', { id: 'pay-amount' }, '')),
    el('button', { id: 'place-order', type: 'submit', class: 'button primary wide large' }, 'Place order'));

  const summary = el('aside', { class: 'summary-box checkout-summary', 'aria-labelledby': 'checkout-summary-title' },
    el('h2', { id: 'checkout-summary-title' }, 'Your order'),
    el('ul', { class: 'summary-lines' }, cart.lines.map(lineItem)),
    el('p', { class: 'sum-line' }, `Items: ${money(cart.total)}`),
    el('p', { id: 'checkout-shipping', class: 'sum-line' }),
    el('p', { id: 'checkout-total', class: 'total-line' }),
    el('p', { class: 'hint' }, el('a', { href: '/cart' }, 'Change your cart')));

  ctx.page('Checkout', el('div', { class: 'checkout-layout' }, summary, form));

  const showTotals = () => {
    const chosen = options.options.find((o) => o.id === $('input[name=shipping]:checked', form)?.value) ?? options.options[0];
    const cost = chosen ? shippingCost(chosen, cart.total) : null;
    const total = (cost && addMoney(cart.total, cost)) ?? cart.total;
    $('#checkout-shipping').textContent = `Shipping: ${cost ? priceWords(cost) : 'Free'}`;
    $('#checkout-total').textContent = `Total: ${money(total)}`;
    $('#pay-amount').textContent = money(total);
  };
  showTotals();
  form.addEventListener('change', (event) => { if (event.target.name === 'shipping') showTotals(); });
  // A field the shopper corrects loses its error.
  form.addEventListener('input', (event) => {
    const node = event.target.closest('fieldset.choices') ?? event.target;
    if (node.getAttribute('aria-invalid')) unmarkField(node);
  });
  onSubmitForm(form, () => placeOrder(form, formError));
}

/** Checks what can be checked here, then places the order and goes to its page. */
async function placeOrder(form, formError) {
  formError.hidden = true;
  const value = (id) => document.getElementById(id).value.trim();
  const problems = blanks([['contact-email', 'Email'], ['ship-name', 'Full name'], ['ship-line1', 'Address'],
    ['ship-postal', 'Postcode'], ['ship-city', 'City'], ['ship-country', 'Country'], ['card-number', 'Card number'],
    ['card-month', 'Expiry month'], ['card-year', 'Expiry year'], ['card-cvc', 'Security code']]);
  const month = Number(value('card-month'));
  const year = Number(value('card-year'));
  if (value('card-month') && !(Number.isInteger(month) && month >= 1 && month <= 12)) {
    problems.push({ id: 'card-month', text: 'Expiry month: enter a number from 1 to 12' });
  }
  if (value('card-year') && !(Number.isInteger(year) && year >= 1000 && year <= 9999)) {
    problems.push({ id: 'card-year', text: 'Expiry year: enter all four digits, such as 2029' });
  }
  if (refuse(form, problems)) return;
  clearFieldErrors(form);
  const phone = value('contact-phone');
  const line2 = value('ship-line2');
  const body = {
    card: { number: value('card-number'), expiry_month: month, expiry_year: year, cvc: value('card-cvc') },
    contact: { email: value('contact-email'), ...(phone ? { phone } : {}) },
    shipping: {
      option: $('input[name=shipping]:checked', form)?.value ?? 'standard',
      address: {
        name: value('ship-name'), line1: value('ship-line1'), line2, city: value('ship-city'),
        postal_code: value('ship-postal'), country: value('ship-country'),
      },
    },
  };
  checkoutKey ??= uuid();
  say('Placing your order…', 'info');
  try {
    const order = await api('/checkout', { method: 'POST', auth: true, headers: { 'idempotency-key': checkoutKey }, body });
    checkoutKey = null;
    const ref = order.number || order.order_id;
    placedOrders.set(ref, order);
    go(`/orders/${encodeURIComponent(ref)}`);
  } catch (error) {
    if (error instanceof SessionEnded) {
      go('/account?next=/checkout', { flash: { text: 'Your session has ended. Log in again to check out: your cart is kept.', kind: 'info' } });
      return;
    }
    // Not knowing whether the order was placed, the next try sends the same key.
    const unknown = error instanceof Unreachable || (error instanceof Problem && (error.status >= 500 || error.status === 429));
    if (!unknown) checkoutKey = null;
    let words = explain(error);
    if (error instanceof Problem && error.kind === 'idempotency-key-reused') {
      words = 'Your earlier try may already have placed this order. Please look at My orders before you try again.';
    } else if (unknown) {
      words += ' If your order went through, trying again will not charge you twice.';
    }
    const messages = fieldMessages(error, CHECKOUT_FIELDS);
    markFields(form, messages);
    say([words, messages.length ? el('ul', {}, messages.map((m) => el('li', {}, m.text))) : null], 'error');
    if (!messages.some((m) => m.id)) {
      formError.replaceChildren(el('p', {}, words), error.kind === 'idempotency-key-reused' ? el('p', {}, el('a', { href: '/orders' }, 'My orders')) : null);
      formError.hidden = false;
      formError.scrollIntoView({ block: 'nearest' });
    }
  }
}

// ---- The order page (the confirmation, when reached from checkout).

route('/orders/:number', async (ctx) => {
  const ref = ctx.params.number;
  const fromCheckout = placedOrders.has(ref);
  const [order, options] = await Promise.all([
    fromCheckout ? placedOrders.get(ref) : api(`/orders/${encodeURIComponent(ref)}`, { auth: true, signal: ctx.signal }),
    shippingOptions(ctx.signal).catch(() => ({ countries: [] })),
  ]);
  placedOrders.delete(ref);
  if (order.number && ref !== order.number) history.replaceState(history.state, '', `/orders/${encodeURIComponent(order.number)}`);
  drawOrder(ctx, order, fromCheckout, new Map(options.countries.map((c) => [c.code, c.name])));
  if (orderFinished(order)) {
    if (fromCheckout) refreshCartCount(); // the checkout emptied the cart
    return;
  }
  followOrder(order.number || order.order_id, (now, error) => {
    if (now) updateOrder(now);
    $('#order-lag').hidden = !error;
  }, ctx.signal).then((done) => {
    if (done.status === 'confirmed') refreshCartCount();
  }).catch(() => { /* the view was left, or the session ended */ });
}, { signIn: 'Log in to see your order.' });

function orderWords(order) {
  if (order.message) return order.message;
  if (order.status === 'cancelled') return order.cancel_reason ? sentence(order.cancel_reason) : 'This order was cancelled.';
  if (order.status === 'confirmed') return 'Your order is confirmed.';
  return 'We are working on your order.';
}

function drawOrder(ctx, order, fromCheckout, countries) {
  const number = order.number ?? '';
  const shipping = order.shipping;
  const address = shipping?.address;
  ctx.page(number ? `Order ${number}` : 'Your order',
    el('div', { class: 'page-head order-head' },
      ctx.heading('Order ', el('span', { id: 'order-number' }, number)),
      statusBadge(order.status, 'order-status'),
      el('p', { class: 'hint' }, 'Placed on ', el('time', { datetime: order.created_at }, formatDate(order.created_at)))),
    fromCheckout ? el('p', { class: 'thanks' }, 'Thank you for your order! Keep its number handy if you need to write to us.') : null,
    el('div', { class: 'notice order-live' },
      el('p', { id: 'order-message', class: 'order-message', 'aria-live': 'polite' }, orderWords(order)),
      el('div', { id: 'order-progress', class: 'progress', role: 'progressbar', 'aria-label': 'Your order is being processed', hidden: order.status !== 'pending' },
        el('span', { class: 'progress-bar' })),
      el('p', { id: 'order-slow', class: 'slow-note', hidden: !order.slow },
        el('strong', {}, 'This is taking longer than usual. '),
        'You can leave this page: we keep trying, and this page and My orders will show how it ends.'),
      el('p', { id: 'order-extra', class: 'hint' }, extraWords(order)),
      el('p', { id: 'order-lag', class: 'hint', hidden: true }, 'We lost touch with the shop for a moment; this page keeps trying.')),
    el('div', { class: 'order-layout' },
      el('section', { class: 'panel', 'aria-labelledby': 'order-items-title' },
        el('h2', { id: 'order-items-title' }, 'Items'),
        el('ul', { id: 'order-lines', class: 'summary-lines' }, order.lines.map(lineItem)),
        el('p', { class: 'sum-line' }, `Items: ${money(order.items_total ?? order.total)}`),
        el('p', { class: 'sum-line' }, `Shipping: ${shipping ? priceWords(shipping.price) : 'Free'}`),
        el('p', { id: 'order-total', class: 'total-line' }, `Total: ${money(order.total)}`)),
      el('section', { class: 'panel', 'aria-labelledby': 'order-delivery-title' },
        el('h2', { id: 'order-delivery-title' }, 'Delivery'),
        el('p', { class: 'delivery-option' }, shipping?.name ?? 'Collect in store'),
        el('address', { id: 'order-address' }, address
          ? [address.name, address.line1, address.line2, `${address.postal_code} ${address.city}`, countries.get(address.country) ?? address.country]
            .filter(Boolean).flatMap((line, i) => (i ? [el('br'), line] : [line]))
          : 'Collected from the shop'),
        order.contact ? el('h2', {}, 'Contact') : null,
        order.contact ? el('p', {}, order.contact.email, order.contact.phone ? [el('br'), order.contact.phone] : null) : null)),
    el('p', { class: 'after-order' }, el('a', { href: '/orders' }, 'All my orders'), el('a', { href: '/' }, 'Continue shopping')));
}

function extraWords(order) {
  const words = [];
  if (order.status === 'cancelled' && order.cancel_reason && !orderWords(order).includes(order.cancel_reason)) {
    words.push(sentence(order.cancel_reason));
  }
  if (order.refunded) words.push('Your payment has been refunded.');
  return words.join(' ');
}

function updateOrder(order) {
  const badge = $('#order-status');
  if (!badge) return;
  badge.replaceWith(statusBadge(order.status, 'order-status'));
  const message = orderWords(order);
  if ($('#order-message').textContent !== message) $('#order-message').textContent = message;
  $('#order-progress').hidden = order.status !== 'pending';
  $('#order-slow').hidden = !order.slow;
  $('#order-extra').textContent = extraWords(order);
}
