DROP TABLE status_index_seq;
