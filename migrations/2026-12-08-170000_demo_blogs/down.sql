DROP TABLE demo_mentions;
DROP TABLE demo_posts;
DROP TABLE demo_learners;
DROP TABLE demo_state;
