-- cleanroom test artifact
-- source: golden sample

SET NAMES utf8mb4;
SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION';
SET FOREIGN_KEY_CHECKS=0;

CREATE TABLE `customers` (
    `id` INT NOT NULL,
    `email` VARCHAR(120) NOT NULL,
    `full_name` LONGTEXT,
    `balance` DECIMAL(12, 2),
    `lifetime` DECIMAL(38, 10),
    `created_at` DATETIME(6), -- stored in UTC
    `active` BOOLEAN NOT NULL,
    `avatar` LONGBLOB,
    `prefs` JSON
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE `orders` (
    `id` BIGINT NOT NULL,
    `customer_id` INT NOT NULL,
    `payment_id` INT,
    `amount` DOUBLE,
    `placed_on` DATE,
    `placed_at` DATETIME(6),
    `ships_at` TIME(6),
    `external_id` CHAR(36),
    `tags` JSON, -- source type TEXT[] kept as JSON
    `client_ip` LONGTEXT, -- source type INET (other) kept as text
    `total` LONGTEXT -- source type NUMERIC (decimal) kept as text
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

START TRANSACTION;

INSERT INTO `customers` (`id`, `email`, `full_name`, `balance`, `lifetime`, `created_at`, `active`, `avatar`, `prefs`) VALUES
(1,'user1@example.test','O\'Brien',1234567890.12,1234567890123456789012345678.0123456789,'2024-03-30 16:30:15.123456',1,X'0001ff00','{"lang": "ja", "name": "\\u65e5\\u672c", "q": "it\'s \\"x\\"", "bs": "\\\\"}'),
(2,'user2@example.test','back\\slash \\N \\. \\x00',-0.01,-0.0000000001,'1999-12-31 23:59:59',0,X'',NULL),
(3,'user3@example.test','tab	here',0.00,NULL,NULL,1,NULL,'[]'),
(4,'user4@example.test','new\nline',NULL,42.0000000000,'2020-01-01 05:00:00',0,X'275c0a090d','{}');

INSERT INTO `orders` (`id`, `customer_id`, `payment_id`, `amount`, `placed_on`, `placed_at`, `ships_at`, `external_id`, `tags`, `client_ip`, `total`) VALUES
(10,1,7,0.1,'2024-02-29','2024-02-29 12:00:00.000001','23:59:59.999999','0b7e6f9a-3c1d-4e5f-8a9b-0c1d2e3f4a5b','["a", "b\'c", "日本"]','192.0.2.1','123456789012345678901234567890123456789012.5'),
(11,1,NULL,-1e+300,NULL,NULL,'00:00:00',NULL,'[]',NULL,NULL),
(12,2,9,NULL,'1970-01-01','1970-01-01 00:00:00',NULL,'00000000-0000-0000-0000-000000000000',NULL,'2001:db8::1','0');

COMMIT;

-- omitted: unique customers(full_name, ssn): a column was dropped by masking
-- omitted: unique customers(ssn): a column was dropped by masking
-- omitted: foreign key orders(payment_id) -> payments(id): table payments is not in the artifact
ALTER TABLE `customers` ADD PRIMARY KEY (`id`);
ALTER TABLE `orders` ADD PRIMARY KEY (`id`);
ALTER TABLE `customers` ADD CONSTRAINT `customers_email_key` UNIQUE (`email`);
ALTER TABLE `orders` ADD CONSTRAINT `orders_customer_id_fkey` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`);

SET FOREIGN_KEY_CHECKS=1;
