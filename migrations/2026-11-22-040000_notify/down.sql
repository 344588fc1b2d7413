DROP TABLE mentions;
DROP TABLE outbox;
