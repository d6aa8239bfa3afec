-- Proprietary tables (taprunner/schema/access.py): who may read what, which
-- database role each signed-in owner's queries run as, and the row-level
-- security that hides restricted tables from TAP_SCHEMA.
--
-- Idempotent, like tap_schema.sql. The schema tap_acl is the service's: the
-- query role may call tap_acl.session_role() and nothing else in it.

CREATE SCHEMA IF NOT EXISTS tap_acl;

-- One row per (target, principal): a table ('schema.table') or a whole schema
-- ('schema'), PostgreSQL names; a user (an owner as the service knows it) or a
-- group; the NOLOGIN role holding the principal's SELECT privileges.
CREATE TABLE IF NOT EXISTS tap_acl.grants (
    target     text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('user', 'group')),
    principal  text NOT NULL,
    role       name NOT NULL,
    PRIMARY KEY (target, kind, principal)
);
-- The relation or schema the target named when last enforced: a grant follows
-- its object through a rename (taprunner/schema/access.py, _FOLLOW_SQL).
ALTER TABLE tap_acl.grants ADD COLUMN IF NOT EXISTS object_oid oid;

-- The session role of each signed-in owner, as the server last derived it from
-- the owner's groups (runners and the fast lane look it up by owner).
CREATE TABLE IF NOT EXISTS tap_acl.identities (
    owner      text PRIMARY KEY,
    groups     text[] NOT NULL,
    role       name NOT NULL,
    seen       timestamptz NOT NULL DEFAULT now()
);

-- The role the query of a job of ``owner`` runs as; the query role when the
-- owner has no proprietary access (or its role is gone). SECURITY DEFINER: the
-- query role reads no table of tap_acl.
CREATE OR REPLACE FUNCTION tap_acl.session_role(who text) RETURNS name
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT i.role FROM tap_acl.identities i
         WHERE i.owner = who AND to_regrole(i.role) IS NOT NULL),
        'aiouws_query'::name)
$$;
REVOKE ALL ON FUNCTION tap_acl.session_role(text) FROM PUBLIC;

-- Row-level security on TAP_SCHEMA: a row is visible to a role exactly when the
-- role may read the table it describes (the table's owner, the service, sees
-- every row). A restricted table is not in TAP_SCHEMA for anyone else. A table
-- in a schema the role may not use is not readable either: to_regclass would
-- raise "permission denied for schema", failing all of TAP_SCHEMA.
CREATE OR REPLACE FUNCTION tap_schema.readable(table_name text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN cardinality(parts) > 1 AND NOT coalesce(has_schema_privilege(
            to_regnamespace(quote_ident(parts[cardinality(parts) - 1])), 'USAGE'),
            false) THEN false
        WHEN to_regclass(table_name) IS NULL THEN false
        ELSE has_table_privilege(to_regclass(table_name), 'SELECT') END
    FROM parse_ident(table_name) AS parts
$$;

ALTER TABLE tap_schema.schemas ENABLE ROW LEVEL SECURITY;
ALTER TABLE tap_schema.tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE tap_schema.columns ENABLE ROW LEVEL SECURITY;
ALTER TABLE tap_schema.keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE tap_schema.key_columns ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS readable ON tap_schema.tables;
CREATE POLICY readable ON tap_schema.tables FOR SELECT
    USING (tap_schema.readable(table_name));
DROP POLICY IF EXISTS readable ON tap_schema.columns;
CREATE POLICY readable ON tap_schema.columns FOR SELECT
    USING (tap_schema.readable(table_name));
DROP POLICY IF EXISTS readable ON tap_schema.keys;
CREATE POLICY readable ON tap_schema.keys FOR SELECT
    USING (tap_schema.readable(from_table) AND tap_schema.readable(target_table));
DROP POLICY IF EXISTS readable ON tap_schema.key_columns;
CREATE POLICY readable ON tap_schema.key_columns FOR SELECT
    USING (EXISTS (SELECT FROM tap_schema.keys k WHERE k.key_id = key_columns.key_id));
DROP POLICY IF EXISTS readable ON tap_schema.schemas;
CREATE POLICY readable ON tap_schema.schemas FOR SELECT
    USING (EXISTS (SELECT FROM tap_schema.tables t
                   WHERE t.schema_name = schemas.schema_name));
