"""Notify storage: inbox, deliveries, durable timers, contacts, operator alerts, clock setting."""
