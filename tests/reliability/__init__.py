"""The standing reliability suite (issue 9): real servers, killed, cut off and raced."""
