-- 0007: where an answer came from: the module that answered in place of the upstream (a cache,
-- a fixture), and, for a model call a module made itself, that module.

ALTER TABLE traces ADD COLUMN answered_by TEXT;
ALTER TABLE traces ADD COLUMN internal_caller TEXT;
