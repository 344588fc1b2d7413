DROP TABLE peer_relays;
ALTER TABLE peers DROP COLUMN last_refusal_at;
ALTER TABLE peers DROP COLUMN last_refusal;
ALTER TABLE peers DROP COLUMN finality_refusals;
ALTER TABLE peers DROP COLUMN base_url;
