-- TAP_SCHEMA (TAP 1.1 section 4) as real tables, plus the empty TAP_UPLOAD schema.
--
-- Idempotent: every statement may run again on an installed database; the
-- self-describing rows are upserted so that editing this file and re-running it
-- updates them.
--
-- Naming: the PostgreSQL schema is the regular identifier tap_schema, so that
-- ADQL's TAP_SCHEMA.tables (a regular identifier, case-insensitive) finds it.
-- Rows store every name in lowercase, qualified as used in queries
-- ('tap_schema.tables', 'demo.stars'), as DaCHS does; TAP clients (pyvo, stilts
-- taplint) compare these names case-insensitively.

CREATE SCHEMA IF NOT EXISTS tap_schema;
CREATE SCHEMA IF NOT EXISTS tap_upload;

CREATE TABLE IF NOT EXISTS tap_schema.schemas (
    schema_name  text PRIMARY KEY,
    utype        text,
    description  text,
    schema_index integer
);

CREATE TABLE IF NOT EXISTS tap_schema.tables (
    schema_name  text NOT NULL
                 REFERENCES tap_schema.schemas (schema_name) ON DELETE CASCADE,
    table_name   text PRIMARY KEY,
    table_type   text NOT NULL CHECK (table_type IN ('table', 'view')),
    utype        text,
    description  text,
    table_index  integer
);

-- The row count VODataService 1.2 gives each table in /tables (nrows): TAP_SCHEMA
-- 1.1 has no column for it, and allows extra ones (DaCHS has the same). Publishing
-- fills it (taprunner/schema/tapschema.py: counted, or the planner's estimate).
ALTER TABLE tap_schema.tables ADD COLUMN IF NOT EXISTS nrows bigint;

CREATE TABLE IF NOT EXISTS tap_schema.columns (
    table_name   text NOT NULL
                 REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE,
    column_name  text NOT NULL,
    datatype     text NOT NULL,
    arraysize    text,
    xtype        text,
    "size"       integer,
    description  text,
    utype        text,
    unit         text,
    ucd          text,
    indexed      integer NOT NULL DEFAULT 0 CHECK (indexed IN (0, 1)),
    principal    integer NOT NULL DEFAULT 0 CHECK (principal IN (0, 1)),
    std          integer NOT NULL DEFAULT 0 CHECK (std IN (0, 1)),
    column_index integer,
    PRIMARY KEY (table_name, column_name)
);

CREATE TABLE IF NOT EXISTS tap_schema.keys (
    key_id       text PRIMARY KEY,
    from_table   text NOT NULL
                 REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE,
    target_table text NOT NULL
                 REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE,
    description  text,
    utype        text
);

CREATE TABLE IF NOT EXISTS tap_schema.key_columns (
    key_id        text NOT NULL
                  REFERENCES tap_schema.keys (key_id) ON DELETE CASCADE,
    from_column   text NOT NULL,
    target_column text NOT NULL,
    PRIMARY KEY (key_id, from_column, target_column)
);

-- Self-description: TAP_SCHEMA publishes its own tables (TAP 1.1 section 4).

INSERT INTO tap_schema.schemas (schema_name, utype, description, schema_index)
VALUES ('tap_schema', NULL, 'Metadata on the tables published by this service', 100000)
ON CONFLICT (schema_name) DO UPDATE
    SET utype = EXCLUDED.utype, description = EXCLUDED.description,
        schema_index = EXCLUDED.schema_index;

INSERT INTO tap_schema.tables
    (schema_name, table_name, table_type, utype, description, table_index)
VALUES
    ('tap_schema', 'tap_schema.schemas', 'table', NULL,
     'Schemas containing published tables', 1),
    ('tap_schema', 'tap_schema.tables', 'table', NULL,
     'Tables published by this service', 2),
    ('tap_schema', 'tap_schema.columns', 'table', NULL,
     'Columns of the published tables', 3),
    ('tap_schema', 'tap_schema.keys', 'table', NULL,
     'Foreign keys between published tables', 4),
    ('tap_schema', 'tap_schema.key_columns', 'table', NULL,
     'Column pairs of the foreign keys in tap_schema.keys', 5)
ON CONFLICT (table_name) DO UPDATE
    SET schema_name = EXCLUDED.schema_name, table_type = EXCLUDED.table_type,
        utype = EXCLUDED.utype, description = EXCLUDED.description,
        table_index = EXCLUDED.table_index;

INSERT INTO tap_schema.columns
    (table_name, column_name, datatype, arraysize, xtype, "size", description,
     utype, unit, ucd, indexed, principal, std, column_index)
VALUES
    ('tap_schema.schemas', 'schema_name', 'unicodeChar', '*', NULL, NULL,
     'Schema name, as used in queries', NULL, NULL, 'meta.id;meta.main', 1, 1, 1, 1),
    ('tap_schema.schemas', 'utype', 'unicodeChar', '*', NULL, NULL,
     'Utype of the schema', NULL, NULL, 'meta.utype', 0, 1, 1, 2),
    ('tap_schema.schemas', 'description', 'unicodeChar', '*', NULL, NULL,
     'Description of the schema', NULL, NULL, 'meta.note', 0, 1, 1, 3),
    ('tap_schema.schemas', 'schema_index', 'int', NULL, NULL, NULL,
     'Recommended sort order of schemas', NULL, NULL, 'meta.number', 0, 0, 1, 4),

    ('tap_schema.tables', 'schema_name', 'unicodeChar', '*', NULL, NULL,
     'Schema holding the table', NULL, NULL, 'meta.id', 0, 1, 1, 1),
    ('tap_schema.tables', 'table_name', 'unicodeChar', '*', NULL, NULL,
     'Fully qualified table name, as used in queries', NULL, NULL,
     'meta.id;meta.main', 1, 1, 1, 2),
    ('tap_schema.tables', 'table_type', 'unicodeChar', '*', NULL, NULL,
     'Either table or view', NULL, NULL, 'meta.code', 0, 1, 1, 3),
    ('tap_schema.tables', 'utype', 'unicodeChar', '*', NULL, NULL,
     'Utype of the table', NULL, NULL, 'meta.utype', 0, 1, 1, 4),
    ('tap_schema.tables', 'description', 'unicodeChar', '*', NULL, NULL,
     'Description of the table', NULL, NULL, 'meta.note', 0, 1, 1, 5),
    ('tap_schema.tables', 'table_index', 'int', NULL, NULL, NULL,
     'Recommended sort order of tables', NULL, NULL, 'meta.number', 0, 0, 1, 6),
    ('tap_schema.tables', 'nrows', 'long', NULL, NULL, NULL,
     'Number of rows in the table (counted when published; the planner''s'
     ' estimate from a million rows on)', NULL, NULL, 'meta.number', 0, 0, 0, 7),

    ('tap_schema.columns', 'table_name', 'unicodeChar', '*', NULL, NULL,
     'Fully qualified name of the table holding the column', NULL, NULL,
     'meta.id', 1, 1, 1, 1),
    ('tap_schema.columns', 'column_name', 'unicodeChar', '*', NULL, NULL,
     'Column name, as used in queries', NULL, NULL, 'meta.id;meta.main', 1, 1, 1, 2),
    ('tap_schema.columns', 'datatype', 'unicodeChar', '*', NULL, NULL,
     'VOTable datatype of the column', NULL, NULL, 'meta.code', 0, 1, 1, 3),
    ('tap_schema.columns', 'arraysize', 'unicodeChar', '*', NULL, NULL,
     'VOTable arraysize of the column', NULL, NULL, 'meta.code', 0, 1, 1, 4),
    ('tap_schema.columns', 'xtype', 'unicodeChar', '*', NULL, NULL,
     'VOTable xtype of the column', NULL, NULL, 'meta.code', 0, 1, 1, 5),
    ('tap_schema.columns', '"size"', 'int', NULL, NULL, NULL,
     'Length of fixed-size columns (deprecated, use arraysize)', NULL, NULL,
     'meta.number', 0, 0, 1, 6),
    ('tap_schema.columns', 'description', 'unicodeChar', '*', NULL, NULL,
     'Description of the column', NULL, NULL, 'meta.note', 0, 1, 1, 7),
    ('tap_schema.columns', 'utype', 'unicodeChar', '*', NULL, NULL,
     'Utype of the column', NULL, NULL, 'meta.utype', 0, 1, 1, 8),
    ('tap_schema.columns', 'unit', 'unicodeChar', '*', NULL, NULL,
     'VOUnit of the column values', NULL, NULL, 'meta.unit', 0, 1, 1, 9),
    ('tap_schema.columns', 'ucd', 'unicodeChar', '*', NULL, NULL,
     'UCD of the column', NULL, NULL, 'meta.ucd', 0, 1, 1, 10),
    ('tap_schema.columns', 'indexed', 'int', NULL, NULL, NULL,
     '1 if the column is indexed, 0 otherwise', NULL, NULL, 'meta.code', 0, 1, 1, 11),
    ('tap_schema.columns', 'principal', 'int', NULL, NULL, NULL,
     '1 if the column is principal, 0 otherwise', NULL, NULL, 'meta.code', 0, 1, 1, 12),
    ('tap_schema.columns', 'std', 'int', NULL, NULL, NULL,
     '1 if the column is defined by a standard, 0 otherwise', NULL, NULL,
     'meta.code', 0, 1, 1, 13),
    ('tap_schema.columns', 'column_index', 'int', NULL, NULL, NULL,
     'Recommended sort order of columns', NULL, NULL, 'meta.number', 0, 0, 1, 14),

    ('tap_schema.keys', 'key_id', 'unicodeChar', '*', NULL, NULL,
     'Unique key identifier', NULL, NULL, 'meta.id;meta.main', 1, 1, 1, 1),
    ('tap_schema.keys', 'from_table', 'unicodeChar', '*', NULL, NULL,
     'Fully qualified table name of the foreign key', NULL, NULL, 'meta.id', 0, 1, 1, 2),
    ('tap_schema.keys', 'target_table', 'unicodeChar', '*', NULL, NULL,
     'Fully qualified table name of the referenced key', NULL, NULL,
     'meta.id', 0, 1, 1, 3),
    ('tap_schema.keys', 'description', 'unicodeChar', '*', NULL, NULL,
     'Description of the key', NULL, NULL, 'meta.note', 0, 1, 1, 4),
    ('tap_schema.keys', 'utype', 'unicodeChar', '*', NULL, NULL,
     'Utype of the key', NULL, NULL, 'meta.utype', 0, 1, 1, 5),

    ('tap_schema.key_columns', 'key_id', 'unicodeChar', '*', NULL, NULL,
     'Key identifier from tap_schema.keys', NULL, NULL, 'meta.id', 1, 1, 1, 1),
    ('tap_schema.key_columns', 'from_column', 'unicodeChar', '*', NULL, NULL,
     'Column in the from_table', NULL, NULL, 'meta.id', 0, 1, 1, 2),
    ('tap_schema.key_columns', 'target_column', 'unicodeChar', '*', NULL, NULL,
     'Column in the target_table', NULL, NULL, 'meta.id', 0, 1, 1, 3)
ON CONFLICT (table_name, column_name) DO UPDATE
    SET datatype = EXCLUDED.datatype, arraysize = EXCLUDED.arraysize,
        xtype = EXCLUDED.xtype, "size" = EXCLUDED."size",
        description = EXCLUDED.description, utype = EXCLUDED.utype,
        unit = EXCLUDED.unit, ucd = EXCLUDED.ucd, indexed = EXCLUDED.indexed,
        principal = EXCLUDED.principal, std = EXCLUDED.std,
        column_index = EXCLUDED.column_index;

INSERT INTO tap_schema.keys (key_id, from_table, target_table, description, utype)
VALUES
    ('tap_schema.tables.schema_name', 'tap_schema.tables', 'tap_schema.schemas',
     'Schema holding each table', NULL),
    ('tap_schema.columns.table_name', 'tap_schema.columns', 'tap_schema.tables',
     'Table holding each column', NULL),
    ('tap_schema.keys.from_table', 'tap_schema.keys', 'tap_schema.tables',
     'Table holding the foreign key', NULL),
    ('tap_schema.keys.target_table', 'tap_schema.keys', 'tap_schema.tables',
     'Table referenced by the foreign key', NULL),
    ('tap_schema.key_columns.key_id', 'tap_schema.key_columns', 'tap_schema.keys',
     'Key that each column pair belongs to', NULL)
ON CONFLICT (key_id) DO UPDATE
    SET from_table = EXCLUDED.from_table, target_table = EXCLUDED.target_table,
        description = EXCLUDED.description, utype = EXCLUDED.utype;

INSERT INTO tap_schema.key_columns (key_id, from_column, target_column)
VALUES
    ('tap_schema.tables.schema_name', 'schema_name', 'schema_name'),
    ('tap_schema.columns.table_name', 'table_name', 'table_name'),
    ('tap_schema.keys.from_table', 'from_table', 'table_name'),
    ('tap_schema.keys.target_table', 'target_table', 'table_name'),
    ('tap_schema.key_columns.key_id', 'key_id', 'key_id')
ON CONFLICT DO NOTHING;
