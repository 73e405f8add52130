"""Build the embedded demo: a small, production-like shop database in SQLite.

Every value is generated (seeded Faker), so nothing here is real, but it has what real
databases have: names, emails, phones, addresses, dates of birth, card numbers in a payments
table, and support tickets whose free text mentions emails and phone numbers.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    full_name VARCHAR(120) NOT NULL,
    email VARCHAR(160) NOT NULL UNIQUE,
    phone VARCHAR(40),
    birth_date DATE,
    loyalty_tier VARCHAR(12) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE addresses (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    street VARCHAR(200) NOT NULL,
    city VARCHAR(80) NOT NULL,
    postal_code VARCHAR(16) NOT NULL,
    country_code CHAR(2) NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    order_number VARCHAR(24) NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    status VARCHAR(16) NOT NULL,
    total NUMERIC(10, 2) NOT NULL,
    placed_at TIMESTAMP NOT NULL
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    card_number VARCHAR(19) NOT NULL,
    card_expiry CHAR(5) NOT NULL,
    cvv CHAR(3) NOT NULL,
    amount NUMERIC(10, 2) NOT NULL
);
CREATE TABLE support_tickets (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customers(id),
    subject VARCHAR(200) NOT NULL,
    body TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL
);
"""

TICKET_TEMPLATES = [
    "Hi, I never got order {order}. Please reach me at {email} or call {phone}.",
    "My card ending {last4} was charged twice for {order}. Contact: {phone}.",
    "Please change my email to {email2}; the old one {email} no longer works.",
    "Delivery to {street} failed on {date}. Version of the app: 3.{minor}.1",
    "Where is {order}? Tracking page shows status 'shipped' since {date}.",
]


def build(path: Path, customers: int = 2000, seed: int = 7) -> dict[str, int]:
    """Create the demo database at ``path`` (replacing it); return rows per table."""
    from faker import Faker

    fake = Faker("en_US")
    Faker.seed(seed)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    base = dt.datetime(2024, 1, 1)

    people = []
    for cid in range(1, customers + 1):
        first, last = fake.first_name(), fake.last_name()
        email = f"{first}.{last}{cid}@{rng.choice(['gmail.com', 'outlook.com', 'yahoo.co.jp', 'corp-mail.net'])}".lower()
        people.append((cid, f"{first} {last}", email, fake.phone_number(), fake.date_of_birth(minimum_age=18, maximum_age=85).isoformat(),
                       rng.choice(["bronze", "silver", "gold"]), (base + dt.timedelta(minutes=rng.randrange(500_000))).isoformat(sep=" ")))
    db.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", people)
    db.executemany(
        "INSERT INTO addresses VALUES (?,?,?,?,?,?)",
        [(cid, cid, fake.street_address(), fake.city(), fake.postcode(), "US") for cid in range(1, customers + 1)],
    )
    orders, payments = [], []
    for oid in range(1, customers * 3 + 1):
        cid = rng.randrange(1, customers + 1)
        total = round(rng.uniform(5, 500), 2)
        orders.append((oid, f"ORD-2024-{oid:06d}", cid, rng.choice(["paid", "shipped", "refunded"]), total,
                       (base + dt.timedelta(minutes=rng.randrange(500_000))).isoformat(sep=" ")))
        payments.append((oid, oid, fake.credit_card_number(), fake.credit_card_expire(), fake.credit_card_security_code()[:3], total))
    db.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?)", orders)
    db.executemany("INSERT INTO payments VALUES (?,?,?,?,?,?)", payments)
    tickets = []
    for tid in range(1, customers // 2 + 1):
        cid, _, email, phone, *_ = people[rng.randrange(customers)]
        body = rng.choice(TICKET_TEMPLATES).format(
            order=f"ORD-2024-{rng.randrange(1, customers * 3):06d}", email=email, phone=phone,
            email2=fake.email(), last4=rng.randrange(1000, 9999), street=fake.street_address(),
            date=(base + dt.timedelta(days=rng.randrange(300))).date().isoformat(), minor=rng.randrange(10),
        )
        tickets.append((tid, cid, rng.choice(["Order missing", "Double charge", "Account change", "Delivery"]), body,
                        (base + dt.timedelta(minutes=rng.randrange(500_000))).isoformat(sep=" ")))
    db.executemany("INSERT INTO support_tickets VALUES (?,?,?,?,?)", tickets)
    db.commit()
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("customers", "addresses", "orders", "payments", "support_tickets")}
    db.close()
    return counts
