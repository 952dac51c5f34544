"""Workflow-conditioned defence: priority orders over host types, compliance, search.

Mirrors the workflow-search project ``Guangyu-Jiang/cage2-workflow-search-rl`` (see
``../shared/workflows/SPEC.md``); ``orders`` holds the workflows as data.
"""
