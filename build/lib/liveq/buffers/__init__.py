"""Replay buffers and the observation codecs that store transitions compactly."""
