-- A teaching team: institution admins, and per course an owner, editors and reviewers.
-- Instructors who exist when this runs become admins, so a one-person instance keeps
-- everything it could do.
ALTER TABLE instructors ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE instructors SET admin = TRUE;

-- One role per instructor and course: owner (the course and its staff), editor (modules,
-- tasks, badges; revoking), reviewer (the Reader: ties, dismisses, awards).
CREATE TABLE course_staff (
    course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    instructor_id INTEGER NOT NULL REFERENCES instructors(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'reviewer')),
    granted_at BIGINT NOT NULL,
    granted_by INTEGER REFERENCES instructors(id) ON DELETE SET NULL,
    PRIMARY KEY (course_id, instructor_id)
);
CREATE INDEX course_staff_instructor ON course_staff(instructor_id);

-- Invitations to the team: a single-use link (only its hash is kept), valid for 7 days, for a
-- course role or for admin.
CREATE TABLE invitations (
    id INTEGER PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL COLLATE NOCASE,
    course_id INTEGER REFERENCES courses(id) ON DELETE CASCADE,
    role TEXT CHECK (role IN ('owner', 'editor', 'reviewer')),
    admin BOOLEAN NOT NULL DEFAULT FALSE,
    invited_by INTEGER REFERENCES instructors(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    CHECK (admin OR (course_id IS NOT NULL AND role IS NOT NULL))
);
CREATE INDEX invitations_email ON invitations(email);

-- The audit trail: who did what, when and from where. It names staff and the things acted
-- on (award public ids, hashtags, course slugs), never a learner's personal data, so a
-- forget leaves it whole. No foreign keys: the trail outlives what it names.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    instructor_id BIGINT,
    actor TEXT NOT NULL,
    surface TEXT NOT NULL CHECK (surface IN ('web', 'api', 'cli', 'system')),
    client TEXT,
    action TEXT NOT NULL,
    course_id BIGINT,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_course ON audit_events(course_id, at);

-- API tokens narrowed to named courses (none: every course the instructor's roles allow).
CREATE TABLE api_token_courses (
    token_id INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, course_id)
);
