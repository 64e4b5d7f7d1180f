-- A room round reads ahead its session's committed, unpublished events (realtime/publisher.py
-- `waiting`): found by session, so a backlog elsewhere (the emulator down for a while) is not walked.
CREATE INDEX domain_events_unpublished_session_idx ON domain_events (session_id, id) WHERE published_at IS NULL;
