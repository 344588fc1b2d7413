-- Course timing: a module's optional start date (the course's local date, 'YYYY-MM-DD', as
-- the newsletter's dates are), and the module an instructor names as a course's current one
-- (none: chosen by start dates). Taking a module out of a course clears it there (the store
-- does, in the same transaction); deleting the module clears it through the foreign key.
ALTER TABLE modules ADD COLUMN starts_on TEXT;
ALTER TABLE courses ADD COLUMN current_module_id BIGINT REFERENCES modules(id) ON DELETE SET NULL;
