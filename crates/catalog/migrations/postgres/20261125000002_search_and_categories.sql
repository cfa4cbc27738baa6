-- Categories become rows of their own, with a display name and a description. Every category
-- products already use gets a row, named after its slug ("brewing-gear" -> "Brewing gear").
CREATE TABLE categories (
    slug          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
INSERT INTO categories (slug, name, description, created_at)
SELECT category,
       upper(substr(category, 1, 1)) || replace(substr(category, 2), '-', ' '),
       '',
       now()
FROM (SELECT DISTINCT category FROM products) AS used;

-- A product's category must exist; the database holds the line even against racing writers.
ALTER TABLE products
    ADD CONSTRAINT products_category_fkey FOREIGN KEY (category) REFERENCES categories (slug);

-- Full-text search. Punctuation becomes spaces first, so "TEA-001" is indexed as 'tea' and '001'
-- (the parser would otherwise read '-001' as a signed number) and text splits the same way the
-- search terms do.
ALTER TABLE products ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', regexp_replace(coalesce(name, ''), '[^[:alnum:]]+', ' ', 'g')), 'A') ||
    setweight(to_tsvector('simple', regexp_replace(coalesce(sku, ''), '[^[:alnum:]]+', ' ', 'g')), 'A') ||
    setweight(to_tsvector('simple', regexp_replace(coalesce(description, ''), '[^[:alnum:]]+', ' ', 'g')), 'B') ||
    setweight(to_tsvector('simple', regexp_replace(category, '[^[:alnum:]]+', ' ', 'g')), 'C')
) STORED;
CREATE INDEX products_search ON products USING GIN (search);
