"""Official timing: Al Kamel lap exports parsed and imported as a session's laps."""
