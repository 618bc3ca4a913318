"""People who log in to the web interface, their sessions, and the login throttle."""
