-- 0012: guardrail verdicts per request: a JSON array of {detector, rule, action, position},
-- never the matched text.

ALTER TABLE traces ADD COLUMN verdicts TEXT;
