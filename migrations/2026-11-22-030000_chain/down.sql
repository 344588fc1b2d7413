DROP TABLE blocks;
DROP TABLE chain_records;
DROP TABLE chain_meta;
