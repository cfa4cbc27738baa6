-- Categories become rows of their own, with a display name and a description. Every category
-- products already use gets a row, named after its slug ("brewing-gear" -> "Brewing gear").
CREATE TABLE categories (
    slug          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
INSERT INTO categories (slug, name, description, created_at)
SELECT category,
       upper(substr(category, 1, 1)) || replace(substr(category, 2), '-', ' '),
       '',
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM (SELECT DISTINCT category FROM products);

-- Full-text search. products has a BLOB uuid key and only an implicit rowid, which VACUUM may
-- renumber, so the index keeps the product id in an unindexed column instead of sharing rowids.
CREATE VIRTUAL TABLE products_fts USING fts5(
    product_id UNINDEXED,
    name,
    description,
    sku,
    category,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO products_fts (product_id, name, description, sku, category)
SELECT id, name, description, sku, category FROM products;

CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
    INSERT INTO products_fts (product_id, name, description, sku, category)
    VALUES (new.id, new.name, new.description, new.sku, new.category);
END;
CREATE TRIGGER products_fts_update AFTER UPDATE OF id, name, description, sku, category ON products BEGIN
    DELETE FROM products_fts WHERE product_id = old.id;
    INSERT INTO products_fts (product_id, name, description, sku, category)
    VALUES (new.id, new.name, new.description, new.sku, new.category);
END;
CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
    DELETE FROM products_fts WHERE product_id = old.id;
END;
