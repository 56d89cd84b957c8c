-- Issue 15 (I-158): the start-up check of encryption at rest counts the
-- specifications per envelope head (`ajwt-sealed.v1.<KEK id>.`, the first
-- 32 characters) with one GROUP BY over this index, instead of reading
-- every sealed specification: a start with a million agents reads the
-- index only.
CREATE INDEX agent_registrations_spec_head
    ON agent_registrations (substr(spec_json, 1, 32));
