-- Each learner's public badges page, /learners/{public_id}. The id is random (96 bits from
-- SQLite's generator, seeded by the system), never derived from the email; the learner can
-- hide the page from their private link. Made with the learner, so every path that creates
-- one gets it.
CREATE TABLE portfolios (
    author_id INTEGER PRIMARY KEY NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
    public_id TEXT NOT NULL UNIQUE,
    hidden BOOLEAN NOT NULL DEFAULT 0
);
INSERT INTO portfolios (author_id, public_id) SELECT id, lower(hex(randomblob(12))) FROM authors;
CREATE TRIGGER portfolios_for_new_authors AFTER INSERT ON authors BEGIN
    INSERT INTO portfolios (author_id, public_id) VALUES (NEW.id, lower(hex(randomblob(12))));
END;
-- Hiding or showing the page changes what verification pages link to.
CREATE TRIGGER doc_generation_portfolios_update AFTER UPDATE ON portfolios BEGIN UPDATE doc_generation SET n = n + 1; END;
