DROP TABLE module_tasks;
DROP TABLE tasks;
DROP TABLE course_modules;
DROP TABLE modules;
DROP TABLE courses;
DROP TABLE institution;
DROP TABLE instructors;
