-- The public Open Badges documents and verification pages are served from memory. Every
-- change that could alter one bumps this counter inside the changing transaction, whichever
-- process made it, so a server sees it before serving a cached copy.
CREATE TABLE doc_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n BIGINT NOT NULL
);
INSERT INTO doc_generation (id, n) VALUES (1, 0);

CREATE TRIGGER doc_generation_awards_update AFTER UPDATE ON awards BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_awards_delete AFTER DELETE ON awards BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_tasks_update AFTER UPDATE ON tasks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_tasks_delete AFTER DELETE ON tasks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_courses_update AFTER UPDATE ON courses BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_courses_delete AFTER DELETE ON courses BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_course_modules_insert AFTER INSERT ON course_modules BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_course_modules_update AFTER UPDATE ON course_modules BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_course_modules_delete AFTER DELETE ON course_modules BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_module_tasks_insert AFTER INSERT ON module_tasks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_module_tasks_update AFTER UPDATE ON module_tasks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_module_tasks_delete AFTER DELETE ON module_tasks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_institution_update AFTER UPDATE ON institution BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_blocks_insert AFTER INSERT ON blocks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_blocks_update AFTER UPDATE ON blocks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_blocks_delete AFTER DELETE ON blocks BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_chain_records_update AFTER UPDATE ON chain_records BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_mentions_insert AFTER INSERT ON mentions BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_mentions_update AFTER UPDATE ON mentions BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_mentions_delete AFTER DELETE ON mentions BEGIN UPDATE doc_generation SET n = n + 1; END;
