DROP TABLE feed_claims;
