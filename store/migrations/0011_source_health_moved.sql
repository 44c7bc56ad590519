-- 0011_source_health_moved: the permanent redirects (301, 308) a source
-- met in the daemon's current run, which the daemon follows for the rest
-- of the run; the configured URL should be updated to the new one.
-- A JSON object, configured URL → new URL (query strings redacted), or
-- NULL when none. `lookout status` shows it.
ALTER TABLE source_health ADD COLUMN moved TEXT;
