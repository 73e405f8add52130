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

-- omitted: unique customers(full_name, ssn): a column was dropped by masking
-- omitted: unique customers(ssn): a column was dropped by masking
-- omitted: foreign key orders(payment_id) -> payments(id): table payments is not in the artifact
ALTER TABLE `customers` ADD PRIMARY KEY (`id`);
ALTER TABLE `orders` ADD PRIMARY KEY (`id`);
ALTER TABLE `customers` ADD CONSTRAINT `customers_email_key` UNIQUE (`email`);
ALTER TABLE `orders` ADD CONSTRAINT `orders_customer_id_fkey` FOREIGN KEY (`customer_id`) REFERENCES `customers` (`id`);
