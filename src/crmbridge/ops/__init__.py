"""Operations: structured logs, the global settings and notifications of runs that end badly."""
