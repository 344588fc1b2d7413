DROP TABLE newsletter_secret;
DROP TABLE newsletter_deliveries;
DROP TABLE newsletter_issues;
DROP TABLE newsletter_subscribers;
DROP TABLE newsletter_courses;
