"""Small framework-free helpers (environment parsing, time parsing, HMAC signatures)."""
