-- Instructors sign in to author courses and review learners' work.
CREATE TABLE instructors (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The institution running this Cairn: the Open Badges Issuer. Exactly one row (id = 1).
CREATE TABLE institution (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    name TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    image BLOB,
    image_type TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE courses (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE modules (
    id INTEGER PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A module may belong to several courses (gRSShopper's graph); position orders it within each.
CREATE TABLE course_modules (
    course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE RESTRICT,
    module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (course_id, module_id)
);
CREATE INDEX course_modules_module ON course_modules(module_id);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    criteria TEXT NOT NULL DEFAULT '',
    -- '#' + lowercase letters, digits, hyphens; unique across the instance.
    hashtag TEXT NOT NULL UNIQUE,
    -- Uploaded badge artwork (PNG or SVG); NULL means the generated default badge.
    badge_image BLOB,
    badge_image_type TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE module_tasks (
    module_id INTEGER NOT NULL REFERENCES modules(id) ON DELETE RESTRICT,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (module_id, task_id)
);
CREATE INDEX module_tasks_task ON module_tasks(task_id);
