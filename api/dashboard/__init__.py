"""The marketers' dashboard (SPEC §12): server-rendered pages under /dashboard."""
