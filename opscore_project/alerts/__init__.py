"""Alerts: rules over the operation log and live state, alerts that fire and resolve, and their deliveries."""
