CREATE TABLE "customers" (
    "id" INTEGER NOT NULL,
    "email" VARCHAR(120) NOT NULL,
    "full_name" TEXT,
    "balance" NUMERIC(12, 2),
    "lifetime" NUMERIC(38, 10),
    "created_at" TIMESTAMP WITH TIME ZONE,
    "active" BOOLEAN NOT NULL,
    "avatar" BYTEA,
    "prefs" JSONB
);

CREATE TABLE "orders" (
    "id" BIGINT NOT NULL,
    "customer_id" INTEGER NOT NULL,
    "payment_id" INTEGER,
    "amount" DOUBLE PRECISION,
    "placed_on" DATE,
    "placed_at" TIMESTAMP WITHOUT TIME ZONE,
    "ships_at" TIME,
    "external_id" UUID,
    "tags" JSONB, -- source type TEXT[] kept as JSON
    "client_ip" TEXT, -- source type INET (other) kept as text
    "total" NUMERIC
);

-- omitted: unique customers(full_name, ssn): a column was dropped by masking
-- omitted: unique customers(ssn): a column was dropped by masking
-- omitted: foreign key orders(payment_id) -> payments(id): table payments is not in the artifact
ALTER TABLE "customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY ("id");
ALTER TABLE "orders" ADD CONSTRAINT "orders_pkey" PRIMARY KEY ("id");
ALTER TABLE "customers" ADD CONSTRAINT "customers_email_key" UNIQUE ("email");
ALTER TABLE "orders" ADD CONSTRAINT "orders_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customers" ("id");
