DROP TRIGGER doc_generation_portfolios_update;
DROP TRIGGER portfolios_for_new_authors;
DROP TABLE portfolios;
