-- The shop's products table (SQLite here; any database of the SQL connector works the same).
--   sqlite3 shop.sqlite < products.sql
CREATE TABLE products (
    sku           varchar(20) PRIMARY KEY,
    name          varchar(40) NOT NULL,
    list_price    numeric(10, 2),
    currency      char(3),
    price_changed timestamp,            -- UTC
    discontinued  boolean NOT NULL DEFAULT 0,
    stock         integer               -- the shop's own: not in the price list
);
INSERT INTO products (sku, name, list_price, currency, price_changed, stock) VALUES
    ('A-100', 'Hex bolt M8 x 40, zinc plated', 0.32, 'EUR', '2026-01-10 08:00:00', 5200),
    ('A-200', 'Hex nut M8, zinc plated', 0.08, 'EUR', '2026-03-02 08:30:00', 9100),
    ('Z-999', 'Sample kit', 0, 'EUR', NULL, 3);
