"""The bridge to AgentKit: HTTP client, polling sync, registration webhook, task dispatch."""
