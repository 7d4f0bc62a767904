-- Which version of spancost's schema this store has; one row per applied version.
CREATE TABLE IF NOT EXISTS {database}.{spancost_schema} {on_cluster} (
    Version UInt32,
    AppliedAt DateTime DEFAULT now(),
    AppliedBy String
) ENGINE = {engine}
ORDER BY Version
