"""Property-based fuzzing of every SCF handler (issue 4, "At-least-once safety")."""
