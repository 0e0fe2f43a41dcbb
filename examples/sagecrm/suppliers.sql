-- The purchasing database's supplier table (PostgreSQL), with a few suppliers.
CREATE TABLE suppliers (
    id         serial PRIMARY KEY,
    code       varchar(40) NOT NULL UNIQUE,
    name       varchar(60) NOT NULL,
    website    varchar(255),
    phone      varchar(34),
    city       varchar(30),
    notes      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO suppliers (code, name, website, phone, city, notes) VALUES
    ('SUP-10001', 'Northwind Components', 'www.northwind.example', '091 555 0101', 'Galway',
     'Net 30'),
    ('SUP-10002', 'Contoso Metals', 'www.contoso.example', '020 7946 0102', 'London', NULL),
    ('SUP-10003', 'Fabrikam Plastics', NULL, '089 555 0103', 'Munich', 'Preferred');
