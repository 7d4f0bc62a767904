-- On a cluster: the table under its public name, reading and writing `{local}` on every shard.
CREATE TABLE IF NOT EXISTS {database}.{table} {on_cluster}
AS {database}.{local}
ENGINE = {engine}
