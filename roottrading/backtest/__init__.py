"""Research: backtests on history with the replay (the real services) and fast (compiled) engines."""
