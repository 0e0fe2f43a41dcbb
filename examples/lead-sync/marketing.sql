-- The stand-in marketing database of the lead-sync recipe (SQLite). Create it with
--   sqlite3 marketing.sqlite < marketing.sql
-- or, without the sqlite3 program,
--   python -c "import sqlite3; sqlite3.connect('marketing.sqlite').executescript(open('marketing.sql').read())"
CREATE TABLE IF NOT EXISTS leads (
    lead_id     VARCHAR(20) PRIMARY KEY,
    email       VARCHAR(100),           -- as the marketing system has it
    email_key   VARCHAR(100),           -- lower(trim(email)): the pull-back finds leads by it
    first_name  VARCHAR(100),
    last_name   VARCHAR(100) NOT NULL,
    company     VARCHAR(150),
    title       VARCHAR(100),
    phone       VARCHAR(50),
    lead_score  INTEGER,
    status      VARCHAR(20) NOT NULL DEFAULT 'new'   -- the marketing system's own values
);
CREATE INDEX IF NOT EXISTS leads_email_key ON leads (email_key);

CREATE TABLE IF NOT EXISTS crm_opportunities (
    opportunity_id  VARCHAR(36) PRIMARY KEY,          -- the CRM's id
    lead_id         VARCHAR(20) REFERENCES leads (lead_id),
    name            VARCHAR(50),
    amount          NUMERIC(26, 6),
    sales_stage     VARCHAR(100),
    probability     INTEGER,
    date_closed     DATE,
    contact_email   VARCHAR(100)
);
