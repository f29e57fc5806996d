-- KeyPackages remember their ciphersuite (RFC 9420's two-byte code), so a
-- claim names the suite its circle uses and a KeyPackage of another suite is
-- neither handed out nor consumed. A device keeps one last resort per suite.
-- Rows stored before this knew only MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
-- (1), the suite every client here published.
ALTER TABLE key_packages ADD COLUMN cipher_suite INTEGER NOT NULL DEFAULT 1;
DROP INDEX key_packages_by_device;
CREATE INDEX key_packages_by_device ON key_packages (device_id, cipher_suite, last_resort, id);
DROP INDEX key_packages_one_last_resort;
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (device_id, cipher_suite) WHERE last_resort = 1;
