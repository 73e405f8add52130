-- cleanroom test artifact
-- source: golden sample

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET client_min_messages = warning;
BEGIN;

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

COPY "customers" ("id", "email", "full_name", "balance", "lifetime", "created_at", "active", "avatar", "prefs") FROM stdin;
1	user1@example.test	O'Brien	1234567890.12	1234567890123456789012345678.0123456789	2024-03-30 16:30:15.123456+00:00	t	\\x0001ff00	{"lang": "ja", "name": "\\u65e5\\u672c", "q": "it's \\"x\\"", "bs": "\\\\"}
2	user2@example.test	back\\slash \\N \\. \\x00	-0.01	-0.0000000001	1999-12-31 23:59:59+00:00	f	\\x	\N
3	user3@example.test	tab\there	0.00	\N	\N	t	\N	[]
4	user4@example.test	new\nline	\N	42.0000000000	2020-01-01 05:00:00+00:00	f	\\x275c0a090d	{}
\.

COPY "orders" ("id", "customer_id", "payment_id", "amount", "placed_on", "placed_at", "ships_at", "external_id", "tags", "client_ip", "total") FROM stdin;
10	1	7	0.1	2024-02-29	2024-02-29 12:00:00.000001	23:59:59.999999	0b7e6f9a-3c1d-4e5f-8a9b-0c1d2e3f4a5b	["a", "b'c", "日本"]	192.0.2.1	123456789012345678901234567890123456789012.5
11	1	\N	-1e+300	\N	\N	00:00:00	\N	[]	\N	\N
12	2	9	\N	1970-01-01	1970-01-01 00:00:00	\N	00000000-0000-0000-0000-000000000000	\N	2001:db8::1	0
\.

-- omitted: unique customers(full_name, ssn): a column was dropped by masking
-- omitted: unique customers(ssn): a column was dropped by masking
-- omitted: foreign key orders(payment_id) -> payments(id): table payments is not in the artifact
ALTER TABLE "customers" ADD CONSTRAINT "customers_pkey" PRIMARY KEY ("id");
ALTER TABLE "orders" ADD CONSTRAINT "orders_pkey" PRIMARY KEY ("id");
ALTER TABLE "customers" ADD CONSTRAINT "customers_email_key" UNIQUE ("email");
ALTER TABLE "orders" ADD CONSTRAINT "orders_customer_id_fkey" FOREIGN KEY ("customer_id") REFERENCES "customers" ("id");

COMMIT;
