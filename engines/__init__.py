"""The engine ladder (naive, static, continuous, paged) and its shared parts, plus peers."""
