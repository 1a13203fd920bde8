"""Linear algebra of the one-step likelihood: normal equations, least squares, compressed
transitions, and the searches over a library's free parameters that solve the linear part in
closed form on the way (variable projection, the frequency scan, pair screening)."""
