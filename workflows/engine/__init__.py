"""The workflow engine.

How work moves (see docs/engine.md):
- Writers record intent and wake the engine: a state report about a task run becomes a ``TaskReport`` row
  (``reports``), a new session becomes pending task runs (``sessions``), a failed dispatch becomes a report too.
- The engine loop (``loop``; one per Celery worker, one step at a time cluster-wide) applies everything pending in
  set-based batches (``step``): reports and due deadlines move runs (``transitions``, ``planning``), ready runs go
  to free agents, and each dispatch is written to the bridge's outbox in the same transaction (``dispatch``).
- The bridge's relay sends the outbox to AgentKit (``agentkit_bridge.relay``) and reports failures back.

Lock order, everywhere: workflow sessions (sorted by id) → their task runs → agents. The dispatch pass takes
pending runs with SKIP LOCKED and never waits for a session lock, so it cannot deadlock with a cancel.
"""
