ALTER TABLE courses DROP COLUMN current_module_id;
ALTER TABLE modules DROP COLUMN starts_on;
