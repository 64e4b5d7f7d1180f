"""Live session rooms over the WebSocket API: connect, join, presence, pushes."""
