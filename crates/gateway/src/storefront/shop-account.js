// The account: log in, sign up (which signs in too), log out, and the list of my orders. Signing
// in moves the guest cart into the account's, then goes where the shopper was heading (`next`).
// The form helpers live here too (labelled fields, errors shown next to them): checkout, the
// cart and the product page use them as well.
'use strict';

// ---- Forms, here and at checkout: labelled fields, errors next to them, blanks caught early.

/** A labelled control (built with its id), with an optional hint it is described by. */
function field(label, control, hint = null) {
  const hintId = hint ? `${control.id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return el('div', { class: 'field' },
    el('label', { for: control.id }, label),
    hint ? el('p', { class: 'hint', id: hintId }, hint) : null,
    control);
}

/** The required fields (`[id, label]`) left empty, as field messages. */
function blanks(required) {
  return required
    .filter(([id]) => !document.getElementById(id)?.value.trim())
    .map(([id, label]) => ({ id, text: `${label}: please fill this in` }));
}

/** Marks `messages` on `form` and says so; answers whether there were any. */
function refuse(form, messages) {
  if (!messages.length) return false;
  markFields(form, messages);
  say(['Please check the details below.', el('ul', {}, messages.map((m) => el('li', {}, sentence(m.text))))], 'error');
  return true;
}

/** Runs `submit` on the form's submit, its button busy meanwhile. */
function onSubmitForm(form, submit) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = $('button[type=submit]', form);
    if (button?.disabled) return;
    if (button) button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await submit();
    } finally {
      if (button) button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
}

/** Takes a field's error away (its note, `aria-invalid`, and the note from `aria-describedby`). */
function unmarkField(node) {
  document.getElementById(`${node.id}-error`)?.remove();
  node.removeAttribute('aria-invalid');
  const left = (node.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && !id.endsWith('-error'));
  if (left.length) node.setAttribute('aria-describedby', left.join(' '));
  else node.removeAttribute('aria-describedby');
}

function clearFieldErrors(form) {
  for (const node of $$('[aria-invalid]', form)) unmarkField(node);
  for (const note of $$('.field-error', form)) note.remove();
}

/** Puts each field error next to its field (`aria-invalid`, `aria-describedby`); focuses the first. */
function markFields(form, messages) {
  clearFieldErrors(form);
  const marked = [];
  for (const { id, text } of messages) {
    const field = id && document.getElementById(id);
    if (!field) continue;
    const noteId = `${id}-error`;
    let note = document.getElementById(noteId);
    if (!note) {
      note = el('p', { class: 'field-error', id: noteId });
      (field.closest('.field') ?? field).append(note);
    }
    note.textContent = sentence(text);
    field.setAttribute('aria-invalid', 'true');
    const described = (field.getAttribute('aria-describedby') ?? '').split(' ').filter(Boolean);
    if (!described.includes(noteId)) field.setAttribute('aria-describedby', [...described, noteId].join(' '));
    marked.push(field.matches('fieldset') ? $('input', field) : field);
  }
  // The first wrong field on the page, wherever the API listed it.
  marked.sort((a, b) => (a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1));
  marked[0]?.focus();
  return marked.length > 0;
}

// ---- Log in, sign up, log out.

const LOGIN_FIELDS = { email: ['login-email', 'Email'], password: ['login-password', 'Password'] };
const SIGNUP_FIELDS = { email: ['signup-email', 'Email'], password: ['signup-password', 'Password'] };

/** Where to go after signing in: a path of this shop, never another site. */
function nextPath(query) {
  const next = query.get('next') ?? '';
  return /^\/(?![/\\])/.test(next) && !/^\/account(\/|\?|$)/.test(next) ? next : null;
}

/** Logs in, keeps the guest cart, and goes on to `next`. */
async function signIn(email, password, next, greeting) {
  const tokens = await api('/identity/login', { method: 'POST', body: { email, password } });
  session.start(tokens, email);
  sessionChanged();
  const note = await mergeGuestCart();
  await refreshCartCount();
  go(next ?? '/', { replace: true, flash: note ? { text: `${greeting} ${note}`, kind: 'info' } : greeting });
}

async function logOut() {
  const refresh = session.refresh;
  signedOut();
  if (refresh) api('/identity/logout', { method: 'POST', body: { refresh_token: refresh } }).catch(() => {});
  const flash = 'You are logged out.';
  if (needsSession(location.pathname) || location.pathname === '/account') go('/', { flash });
  else render(flash);
}

route('/account', (ctx) => {
  const next = nextPath(ctx.query);
  if (session.signedIn) {
    if (next) {
      go(next, { replace: true });
      return;
    }
    ctx.page('Your account',
      el('p', { class: 'lead' }, 'You are logged in as ', el('strong', {}, session.email || 'a customer'), '.'),
      el('ul', { class: 'account-links' },
        el('li', {}, el('a', { class: 'button', href: '/orders' }, 'My orders')),
        el('li', {}, el('a', { class: 'button', href: '/cart' }, 'Your cart')),
        el('li', {}, el('button', { type: 'button', class: 'button', onclick: logOut }, 'Log out'))));
    return;
  }

  const login = el('form', { id: 'log-in', class: 'panel', novalidate: true, 'aria-labelledby': 'log-in-title' },
    el('h2', { id: 'log-in-title' }, 'Log in'),
    el('p', { class: 'hint' }, 'Welcome back.'),
    field('Email', el('input', { id: 'login-email', name: 'email', type: 'email', autocomplete: 'username', required: true })),
    field('Password', el('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    el('button', { type: 'submit', class: 'button primary wide' }, 'Log in'));
  const signup = el('form', { id: 'sign-up', class: 'panel', novalidate: true, 'aria-labelledby': 'sign-up-title' },
    el('h2', { id: 'sign-up-title' }, 'New here? Sign up'),
    el('p', { class: 'hint' }, 'Follow your orders and check out faster next time.'),
    field('Email', el('input', { id: 'signup-email', name: 'email', type: 'email', autocomplete: 'email', required: true })),
    field('Password', el('input', { id: 'signup-password', name: 'password', type: 'password', autocomplete: 'new-password', minlength: 12, maxlength: 128, required: true }),
      'At least 12 characters. A few words in a row make a good one.'),
    el('button', { type: 'submit', class: 'button primary wide' }, 'Sign up'));

  onSubmitForm(login, async () => {
    if (refuse(login, blanks([['login-email', 'Email'], ['login-password', 'Password']]))) return;
    clearFieldErrors(login);
    const email = $('#login-email').value.trim();
    try {
      await signIn(email, $('#login-password').value, next, `Welcome back, ${email}.`);
    } catch (error) {
      markFields(login, fieldMessages(error, LOGIN_FIELDS));
      fail(error, LOGIN_FIELDS);
    }
  });
  onSubmitForm(signup, async () => {
    if (refuse(signup, blanks([['signup-email', 'Email'], ['signup-password', 'Password']]))) return;
    clearFieldErrors(signup);
    const email = $('#signup-email').value.trim();
    const password = $('#signup-password').value;
    try {
      await api('/identity/signup', { method: 'POST', body: { email, password } });
    } catch (error) {
      if (error instanceof Problem && error.status === 409) {
        markFields(signup, [{ id: 'signup-email', text: 'Email: there is already an account with this address; log in instead' }]);
        $('#login-email').value = email;
      } else {
        markFields(signup, fieldMessages(error, SIGNUP_FIELDS));
      }
      fail(error, SIGNUP_FIELDS);
      return;
    }
    try {
      await signIn(email, password, next, `Welcome to the nubo shop! Your account ${email} is ready.`);
    } catch (error) {
      $('#login-email').value = email;
      say(`Your account ${email} is ready, but we could not log you in just now. ${explain(error)} Then log in with it.`, 'info');
    }
  });

  const toCheckout = next === '/checkout';
  ctx.page(toCheckout ? 'Log in to check out' : 'Log in or sign up',
    el('div', { class: 'page-head' },
      ctx.heading(toCheckout ? 'Log in to check out' : 'Log in or create an account'),
      toCheckout ? el('p', { class: 'lead' }, 'Log in, or create an account in a moment. Your cart comes with you.') : null),
    el('div', { class: 'account-grid' }, login, signup));
});

// ---- My orders.

function orderCard(order) {
  const ref = order.number || order.order_id;
  const href = `/orders/${encodeURIComponent(ref)}`;
  const items = countOf(order.lines);
  const shown = order.lines.slice(0, 4);
  return el('li', {}, el('article', { class: 'order-card', 'data-number': order.number ?? '' },
    el('div', { class: 'order-card-head' },
      el('h2', {}, el('a', { href }, order.number ? `Order ${order.number}` : 'Your order')),
      statusBadge(order.status)),
    el('p', { class: 'order-meta' }, 'Placed on ', el('time', { datetime: order.created_at }, formatDate(order.created_at)),
      ` · ${plural(items, 'item')} · Total: ${money(order.total)}`),
    el('ul', { class: 'thumbs', 'aria-label': 'Products in this order' },
      shown.map((l) => el('li', {}, productImage(skuImageUrl(l.sku), `${l.quantity} × ${l.name}`, { sizes: '64px', width: 320, height: 320 }))),
      order.lines.length > shown.length ? el('li', { class: 'thumbs-more' }, `+${order.lines.length - shown.length} more`) : null),
    order.message ? el('p', { class: 'order-message' }, order.message) : null));
}

route('/orders', async (ctx) => {
  const before = ctx.query.get('before');
  const page = await api(`/orders?${new URLSearchParams({ limit: 10, ...(before ? { before } : {}) })}`, { auth: true, signal: ctx.signal });
  if (!page.items.length && !before) {
    ctx.page('My orders', el('div', { class: 'empty-state' },
      el('p', {}, 'You have not ordered anything yet.'),
      el('p', {}, el('a', { class: 'button primary', href: '/' }, 'Start shopping'))));
    return;
  }
  ctx.page(before ? 'My orders, older' : 'My orders',
    el('ul', { class: 'order-list' }, page.items.map(orderCard)),
    page.items.length ? null : el('p', { class: 'empty-state' }, 'There are no older orders.'),
    !before && !page.next_before ? null : el('nav', { class: 'pager', 'aria-label': 'More orders' },
      before ? el('a', { rel: 'prev', href: '/orders' }, el('span', { 'aria-hidden': 'true' }, '← '), 'Latest orders') : null,
      page.next_before ? el('a', { rel: 'next', href: `/orders?${new URLSearchParams({ before: page.next_before })}` }, 'Older orders', el('span', { 'aria-hidden': 'true' }, ' →')) : null));
}, { signIn: 'Log in to see your orders.' });

onStart(() => $('#log-out').addEventListener('click', logOut));
