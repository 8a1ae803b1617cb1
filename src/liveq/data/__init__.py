"""Interaction logs: loaders (Twitch, KuaiLive, generic), synthetic logs, calibration."""
