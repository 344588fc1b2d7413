DROP TRIGGER webhook_award_recorded;
DROP TRIGGER webhook_award_revoked;
DROP TRIGGER webhook_award_created;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
