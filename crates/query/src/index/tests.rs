//! Unit tests for the index: incremental updates and cache patching.
