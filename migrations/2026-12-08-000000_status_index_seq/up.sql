-- Status list indexes are handed out before a credential is signed, outside the award's
-- transaction; AUTOINCREMENT never hands one out twice, even after older rows are deleted.
CREATE TABLE status_index_seq (
    status_index INTEGER PRIMARY KEY AUTOINCREMENT,
    reserved_at BIGINT NOT NULL
);
INSERT INTO status_index_seq (status_index, reserved_at)
    SELECT MAX(status_index), 0 FROM credentials HAVING MAX(status_index) IS NOT NULL;
