DROP INDEX feeds_joined_url;
DROP TABLE feed_claims;
