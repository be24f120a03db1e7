"""Prefect tasks: reproduce one DVC stage, and publish what a stage wrote as Prefect artifacts."""
