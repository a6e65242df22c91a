-- New deployments index embeddings as halfvec(1536): half the HNSW index, and the same recall@10 (1.00 at
-- every scope size in bench/search_quality.py's 300k-row run; candidates are re-sorted at full precision).
-- A table that already holds rows keeps its index: rebuilding one takes minutes per 100k rows, so it is the
-- operator's step (docs/operations.md). The relayer reads the index definition on its first search and searches
-- through whichever index is there (relayer/database/vector_search.py, detect_search_tuning).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM vector_entries) THEN
        DROP INDEX IF EXISTS idx_vector_entries_embedding;
        CREATE INDEX idx_vector_entries_embedding
            ON vector_entries USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops);
    END IF;
END $$;
