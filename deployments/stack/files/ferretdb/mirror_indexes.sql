-- Give FerretDB's indexes a form its query pushdown can use.
--
-- FerretDB v1 on PostgreSQL creates a B-tree index per MongoDB index key, on `_jsonb -> 'key'`,
-- but pushes an equality filter down as `_jsonb -> 'key' @> value`, which a B-tree cannot serve:
-- every filtered read and every update then scans the whole collection, so bulk upserts grow
-- with the square of its size. This event trigger adds, for each key of each such index, a GIN
-- `jsonb_path_ops` index on the same expression, which serves `@>`. Applied by the local stack
-- (deployments/stack/mongodb.py) to FerretDB's database only; real MongoDB needs none of this.
CREATE OR REPLACE FUNCTION polyflow_mirror_gin() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  command record;
  index_name text;
  table_name text;
  schema_name text;
  columns int;
  expression text;
  k int;
BEGIN
  FOR command IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    SELECT c.relname, t.relname, n.nspname, i.indnatts
      INTO index_name, table_name, schema_name, columns
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.indexrelid = command.objid;
    CONTINUE WHEN index_name LIKE '%\_gin'
      OR pg_get_indexdef(command.objid) NOT LIKE '%USING btree (((_jsonb ->%';
    FOR k IN 1..columns LOOP
      expression := pg_get_indexdef(command.objid, k, false);
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin ((%s) jsonb_path_ops)',
                     left(table_name, 40) || '_' || left(md5(expression), 12) || '_gin',
                     schema_name, table_name, expression);
    END LOOP;
  END LOOP;
END
$fn$;
CREATE EVENT TRIGGER polyflow_mirror_gin ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION polyflow_mirror_gin();
