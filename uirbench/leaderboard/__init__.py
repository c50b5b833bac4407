"""Leaderboard: entry schema, verified submissions, tables with CIs and tied ranks, plots, static page."""
