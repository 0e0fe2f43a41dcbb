-- The supplier system's table (PostgreSQL), with four suppliers. Run once:
--   psql -h 127.0.0.1 -U postgres -d suppliers -f suppliers.sql
CREATE TABLE suppliers (
    supplier_id  serial PRIMARY KEY,
    name         varchar(150) NOT NULL,
    phone        varchar(40),
    city         varchar(100),
    notes        text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- every change moves updated_at on: the sync reads changes since its last run by it
CREATE FUNCTION suppliers_touch() RETURNS trigger AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER suppliers_touch BEFORE UPDATE ON suppliers
    FOR EACH ROW EXECUTE FUNCTION suppliers_touch();

INSERT INTO suppliers (name, phone, city, notes) VALUES
    ('Tyrell Industries Holdings', '+1 555 2006', 'Zürich', 'Frame contract 2024-17'),
    ('OCEANIC INDUSTRIES LTD', '+44 20 7946 0012', 'London', NULL),
    ('Acme Widgets AG', '+41 44 668 1800', 'Basel', 'Screws and fittings'),
    ('Nakatomi Trading', '+81 3 5555 0199', 'Tokyo', NULL);
