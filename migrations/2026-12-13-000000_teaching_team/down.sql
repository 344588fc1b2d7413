DROP TABLE api_token_courses;
DROP TABLE audit_events;
DROP TABLE invitations;
DROP TABLE course_staff;
ALTER TABLE instructors DROP COLUMN admin;
