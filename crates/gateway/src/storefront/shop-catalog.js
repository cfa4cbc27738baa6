// Browsing: the home page (hero, featured products, categories), a category, search results and a
// product's page, and the product card every list of products is made of.
'use strict';

// ---- Product images, everywhere: every one served by the shop, in three widths.

const skuImageUrl = (sku) => `/api/v1/products/${encodeURIComponent(sku)}/image`;

function productImage(url, alt, { sizes = '320px', className = null, width = 640, height = 640 } = {}) {
  const sep = url.includes('?') ? '&' : '?';
  const srcset = [320, 640, 1280].map((w) => `${url}${sep}w=${w} ${w}w`).join(', ');
  return el('img', {
    src: `${url}${sep}w=640`, srcset, sizes, alt, width, height, class: className,
    loading: 'lazy', decoding: 'async',
    onerror: (event) => event.target.classList.add('broken'),
  });
}

const PER_PAGE = 20;
const CARD_SIZES = '(max-width: 599px) 50vw, (max-width: 1023px) 33vw, 280px';

let categoryList = null;

/** The categories (`{slug, name, description, products}`), read once; the header's list follows. */
function categories() {
  categoryList ??= api('/categories').then((list) => {
    const found = list.map((c) => ({
      slug: c.slug ?? c.category, name: c.name, description: c.description ?? '', products: c.products ?? 0,
    }));
    $('#category-list').replaceChildren(...found.map((c) =>
      el('li', {}, el('a', { href: `/category/${encodeURIComponent(c.slug)}` }, c.name))));
    markCurrentLinks();
    return found;
  }).catch((error) => {
    categoryList = null; // asked again by the next view
    throw error;
  });
  return categoryList;
}

const productHref = (product) => `/products/${encodeURIComponent(product.sku)}`;
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function productCard(product, level = 3) {
  const add = el('button', { type: 'button', class: 'button quick-add' },
    'Add to cart', el('span', { class: 'visually-hidden' }, `: ${product.name}`));
  add.addEventListener('click', () => addAndTell(product, 1, add));
  return el('li', {}, el('article', { class: 'product-card', 'data-sku': product.sku },
    el('a', { class: 'product-link', href: productHref(product) },
      el('div', { class: 'card-media' },
        productImage(product.image ?? skuImageUrl(product.sku), product.name, { sizes: CARD_SIZES })),
      el(`h${level}`, { class: 'card-title' }, product.name)),
    el('p', { class: 'price' }, money(product.price)),
    add));
}

const productGrid = (items, level) => el('ul', { class: 'product-grid' }, items.map((p) => productCard(p, level)));

function pageNumber(query) {
  const n = Number(query.get('page') ?? 1);
  return Number.isInteger(n) && n >= 1 && n <= 100000 ? n : 1;
}

/** The cards of one page of products (`#products`), and the pager under them. */
function results(result, hrefFor, emptyText, level = 2) {
  const perPage = result.per_page || PER_PAGE;
  const total = Number(result.total) || 0;
  const page = result.page || 1;
  const pages = Math.max(1, Math.ceil(total / perPage));
  let body;
  if (result.items.length) body = productGrid(result.items, level);
  else if (page > pages) body = el('p', { class: 'empty-state' }, 'This page is past the last one. ', el('a', { href: hrefFor(1) }, 'Go to the first page'));
  else body = el('p', { class: 'empty-state' }, emptyText);
  return [
    el('div', { id: 'products' }, body),
    el('nav', { id: 'pager', class: 'pager', 'aria-label': 'Pages' },
      page > 1 ? el('a', { rel: 'prev', href: hrefFor(page - 1) }, el('span', { 'aria-hidden': 'true' }, '← '), 'Previous') : null,
      el('p', { class: 'pager-status' }, `Page ${page} of ${pages} · ${plural(total, 'product')}`),
      page < pages ? el('a', { rel: 'next', href: hrefFor(page + 1) }, 'Next', el('span', { 'aria-hidden': 'true' }, ' →')) : null),
  ];
}

/** Links to every category, filled in when they are known. */
function categoryChips(label) {
  const list = el('ul', { class: 'chips' });
  categories().then((found) => list.replaceChildren(...found.map((c) =>
    el('li', {}, el('a', { class: 'chip', href: `/category/${encodeURIComponent(c.slug)}` }, c.name)))))
    .catch(() => {});
  return el('nav', { class: 'browse', 'aria-label': label }, list);
}

// ---- Home.

const LEADING_CATEGORIES = ['coffee', 'tea'];
const lead = (slug) => (LEADING_CATEGORIES.includes(slug) ? LEADING_CATEGORIES.indexOf(slug) : LEADING_CATEGORIES.length);

route('/', async (ctx) => {
  const [found, all] = await Promise.all([categories(), api('/products?per_page=100', { signal: ctx.signal })]);
  // The shop's own drinks lead, the rest follow in the catalog's order.
  const order = [...found].sort((a, b) => lead(a.slug) - lead(b.slug));
  const byCategory = new Map(order.map((c) => [c.slug, []]));
  for (const p of all.items) {
    if (!byCategory.has(p.category)) byCategory.set(p.category, []);
    byCategory.get(p.category).push(p);
  }
  // One from each category in turn, so the first screen shows the whole shop.
  const featured = [];
  const queues = [...byCategory.values()].map((list) => [...list]);
  while (featured.length < 8 && queues.some((q) => q.length)) {
    for (const q of queues) if (q.length && featured.length < 8) featured.push(q.shift());
  }
  const first = order.find((c) => c.products > 0);
  ctx.page('Home',
    el('section', { class: 'hero' },
      el('div', { class: 'hero-text' },
        el('p', { class: 'eyebrow' }, 'Fresh from the roaster and the tea garden'),
        ctx.heading('Everything for a better cup'),
        el('p', { class: 'hero-lead' },
          'Single origins, loose-leaf teas, brewing gear and gifts, packed with care and on their way in days.'),
        el('p', { class: 'hero-actions' },
          first ? el('a', { class: 'button primary', href: `/category/${encodeURIComponent(first.slug)}` }, `Shop ${first.name}`) : null,
          el('a', { class: 'button', href: '#featured-title' }, 'See what is new'))),
      featured.length ? el('div', { class: 'hero-media' }, featured.slice(0, 3).map((p, i) =>
        el('a', { class: `hero-tile hero-tile-${i}`, href: productHref(p) },
          productImage(p.image ?? skuImageUrl(p.sku), p.name, {
            sizes: i === 0 ? '(max-width: 799px) 60vw, 30vw' : '(max-width: 799px) 30vw, 15vw',
          })))) : null),
    el('section', { class: 'home-section', 'aria-labelledby': 'featured-title' },
      el('h2', { id: 'featured-title' }, 'Featured'),
      el('div', { id: 'featured' }, featured.length ? productGrid(featured, 3)
        : el('p', { class: 'empty-state' }, 'New products are on their way.'))),
    el('section', { class: 'home-section', 'aria-labelledby': 'categories-title' },
      el('h2', { id: 'categories-title' }, 'Shop by category'),
      el('ul', { id: 'category-tiles', class: 'category-tiles' }, found.map((c) => {
        const pick = byCategory.get(c.slug)?.[0];
        return el('li', { class: 'category-tile' },
          pick ? productImage(pick.image ?? skuImageUrl(pick.sku), pick.name, { sizes: '(max-width: 599px) 50vw, 220px', width: 320, height: 320 })
            : el('div', { class: 'tile-blank' }),
          el('div', { class: 'tile-text' },
            el('h3', {}, el('a', { class: 'stretched', href: `/category/${encodeURIComponent(c.slug)}` }, c.name)),
            el('p', {}, plural(c.products, 'product'))));
      }))));
});

// ---- A category.

route('/category/:slug', async (ctx) => {
  const { slug } = ctx.params;
  if (!/^[a-z0-9-]{1,40}$/.test(slug)) return notFound(ctx, 'category');
  const page = pageNumber(ctx.query);
  const [found, result] = await Promise.all([
    categories(),
    api(`/products?${new URLSearchParams({ category: slug, page, per_page: PER_PAGE })}`, { signal: ctx.signal }),
  ]);
  const category = found.find((c) => c.slug === slug);
  if (!category) return notFound(ctx, 'category');
  const hrefFor = (n) => `/category/${encodeURIComponent(slug)}${n > 1 ? `?page=${n}` : ''}`;
  ctx.page(page > 1 ? `${category.name}, page ${page}` : category.name,
    el('div', { class: 'page-head' },
      ctx.heading(category.name),
      category.description ? el('p', { class: 'lead' }, category.description) : null),
    results(result, hrefFor, 'There is nothing in this category yet: come back soon.'));
});

// ---- Search.

route('/search', async (ctx) => {
  const q = (ctx.query.get('q') ?? '').trim().slice(0, 200);
  if (!q) {
    ctx.page('Search',
      el('p', { class: 'lead' }, 'Type what you are looking for in the search box at the top of the page: a name, a word ',
        'from a description, or a product code such as TEA-001.'),
      el('h2', {}, 'Or browse a category'),
      categoryChips('Categories to browse'));
    return;
  }
  const page = pageNumber(ctx.query);
  const category = ctx.query.get('category');
  const params = { q, page, per_page: PER_PAGE, ...(category ? { category } : {}) };
  let result;
  try {
    result = await api(`/products/search?${new URLSearchParams(params)}`, { signal: ctx.signal });
  } catch (error) {
    // Words the search cannot use (only punctuation, say) simply match nothing.
    if (!(error instanceof Problem && [400, 422].includes(error.status))) throw error;
    result = { items: [], page: 1, per_page: PER_PAGE, total: 0 };
  }
  const hrefFor = (n) => `/search?${new URLSearchParams({ q, ...(category ? { category } : {}), ...(n > 1 ? { page: n } : {}) })}`;
  ctx.page(page > 1 ? `Search: ${q}, page ${page}` : `Search: ${q}`,
    el('div', { class: 'page-head' }, ctx.heading(`Results for “${q}”`)),
    results(result, hrefFor, `Nothing matches “${q}”. Check the spelling, try another word, or browse a category.`),
    result.total ? null : categoryChips('Categories to browse'));
});

// ---- A product.

/** Units on sale now: 0 when the shop does not stock it, null when that cannot be told. */
async function stockOf(sku, signal) {
  try {
    return (await api(`/inventory/${encodeURIComponent(sku)}`, { signal })).available;
  } catch (error) {
    if (isAbort(error)) throw error;
    return error instanceof Problem && error.status === 404 ? 0 : null;
  }
}

function stockLine(available) {
  if (available === null || available === undefined) return ['unknown', 'We could not check the stock just now.'];
  if (available <= 0) return ['out', 'Out of stock'];
  if (available <= 5) return ['low', `Only ${available} left in stock`];
  return ['in', 'In stock'];
}

route('/products/:sku', async (ctx) => {
  let product;
  try {
    product = await api(`/products/${encodeURIComponent(ctx.params.sku)}`, { signal: ctx.signal });
  } catch (error) {
    if (error instanceof Problem && [400, 404, 422].includes(error.status)) return notFound(ctx, 'product');
    throw error;
  }
  // Reached by its id: the address shows the SKU, as every link does.
  if (ctx.params.sku !== product.sku) history.replaceState(history.state, '', productHref(product));
  const [available, found] = await Promise.all([stockOf(product.sku, ctx.signal), categories().catch(() => [])]);
  const category = found.find((c) => c.slug === product.category);
  const categoryHref = `/category/${encodeURIComponent(product.category)}`;
  const [stockClass, stockText] = stockLine(available);
  const soldOut = available !== null && available <= 0;
  const most = available > 0 ? Math.min(available, MAX_LINE_QUANTITY) : MAX_LINE_QUANTITY;

  const qty = el('input', { id: 'product-qty', name: 'quantity', type: 'number', inputmode: 'numeric', min: 1, max: most, step: 1, value: 1, disabled: soldOut });
  const button = el('button', { id: 'add-to-cart', type: 'submit', class: 'button primary', disabled: soldOut }, soldOut ? 'Out of stock' : 'Add to cart');
  const fields = { quantity: ['product-qty', 'Quantity'] };
  const form = el('form', { class: 'buy-form', novalidate: true },
    el('div', { class: 'field qty-field' }, el('label', { for: 'product-qty' }, 'Quantity'), qty),
    button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const quantity = Number(qty.value);
    if (!Number.isInteger(quantity) || quantity < 1 || quantity > most) {
      const text = available > 0 && quantity > most
        ? `Quantity: we have ${available} in stock` : `Quantity: enter a whole number from 1 to ${most}`;
      markFields(form, [{ id: 'product-qty', text }]);
      say(sentence(text), 'error');
      return;
    }
    addAndTell(product, quantity, button, { form, fields });
  });

  const related = el('ul', { class: 'product-grid' });
  const relatedBox = el('section', { id: 'related', class: 'home-section', 'aria-labelledby': 'related-title', hidden: true },
    el('h2', { id: 'related-title' }, 'You may also like'), related);
  ctx.page(product.name,
    el('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, el('ol', {},
      el('li', {}, el('a', { href: '/' }, 'Home')),
      el('li', {}, el('a', { href: categoryHref }, category?.name ?? product.category)),
      el('li', {}, el('span', { 'aria-current': 'page' }, product.name)))),
    el('div', { class: 'product-detail' },
      el('div', { class: 'product-gallery' }, productImage(product.image ?? skuImageUrl(product.sku), product.name, {
        className: 'product-image', sizes: '(max-width: 799px) 100vw, 600px', width: 1280, height: 1280,
      })),
      el('div', { class: 'product-info' },
        ctx.heading(product.name),
        el('p', { id: 'product-price', class: 'product-price' }, money(product.price)),
        el('p', { id: 'product-stock', class: `stock stock-${stockClass}` }, stockText),
        el('p', { class: 'description' }, product.description),
        form,
        el('dl', { class: 'facts' },
          el('div', {}, el('dt', {}, 'Product code'), el('dd', {}, product.sku)),
          el('div', {}, el('dt', {}, 'Category'), el('dd', {}, el('a', { href: categoryHref }, category?.name ?? product.category)))))),
    relatedBox);

  // The rest of the category, when it comes; the page does not wait for it.
  api(`/products?${new URLSearchParams({ category: product.category, per_page: 5 })}`, { signal: ctx.signal })
    .then((page) => {
      const others = page.items.filter((p) => p.sku !== product.sku).slice(0, 4);
      if (!others.length) return;
      related.replaceChildren(...others.map((p) => productCard(p, 3)));
      relatedBox.hidden = false;
    })
    .catch(() => { /* the page is whole without it */ });
});

onStart(() => categories().catch(() => { /* each view asks again */ }));
