-- Issue 15 (I-158): the start-up check of encryption at rest counts the
-- specifications per envelope head (`ajwt-sealed.v1.<KEK id>.`, the first
-- 32 characters of `spec_json`) with one GROUP BY over a covering index,
-- instead of reading every sealed specification: a start with a million
-- agents reads this index only. `spec_head` is written by the insert of a
-- registration and kept equal to `substr(spec_json, 1, 32)` by the
-- triggers below (a re-seal updates `spec_json`).
ALTER TABLE agent_registrations ADD COLUMN spec_head TEXT;
UPDATE agent_registrations SET spec_head = substr(spec_json, 1, 32);
CREATE INDEX agent_registrations_spec_head ON agent_registrations (spec_head);

CREATE TRIGGER agent_registrations_spec_head_insert
AFTER INSERT ON agent_registrations
WHEN NEW.spec_head IS NOT substr(NEW.spec_json, 1, 32)
BEGIN
    UPDATE agent_registrations SET spec_head = substr(NEW.spec_json, 1, 32) WHERE id = NEW.id;
END;

CREATE TRIGGER agent_registrations_spec_head_update
AFTER UPDATE OF spec_json ON agent_registrations
BEGIN
    UPDATE agent_registrations SET spec_head = substr(NEW.spec_json, 1, 32) WHERE id = NEW.id;
END;
