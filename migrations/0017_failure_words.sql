-- The desk's free-text search (a name, an e-mail address, a NameID) without
-- reading every failure: the words of each failure in a full-text index,
-- and beside them tags of what the list filters on (school, status, kind,
-- unverified, form sent), so that the totals of a search are counted in
-- the index, whatever the number of failures.
-- Contentless (the words are in `failures` already); `contentless_delete`
-- lets the triggers below remove a failure's words when they change.
-- The tokenizer folds case and accents on both sides, the stored words
-- and the searched ones, so `Éloïse` finds `eloise` and the reverse.
-- Searches name their column (`words : (…)`, `tags : (…)`), so a word
-- never matches a tag.
CREATE VIRTUAL TABLE failure_words USING fts5(
    words,
    tags,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- What is searched, in one place: the subject, the asserted names, and
-- from the user's form the declared names, the children's names, the
-- e-mail address and the message. The tags, one token each (the school
-- codes are letters and digits; a kind loses its underscores), are built
-- the same way by `store::failures::list::tag_*`.
CREATE VIEW failure_words_source (id, words, tags) AS
SELECT id, concat_ws(' ', subject, asserted_last_name, asserted_first_name,
    CASE WHEN json_valid(report_json) THEN concat_ws(' ',
        report_json ->> '$.last_name', report_json ->> '$.first_name',
        report_json ->> '$.email', report_json ->> '$.message',
        (SELECT group_concat(concat_ws(' ', value ->> '$.last_name', value ->> '$.first_name'), ' ')
         FROM json_each(report_json, '$.children')))
    END),
    concat_ws(' ', 'sch' || COALESCE(school_code, 'none'), 'st' || status,
        'k' || replace(kind, '_', ''),
        CASE WHEN asserted_verified = 0 THEN 'unverified' END,
        CASE WHEN report_json IS NOT NULL THEN 'formsent' END)
FROM failures;

INSERT INTO failure_words (rowid, words, tags) SELECT id, words, tags FROM failure_words_source;

CREATE TRIGGER failure_words_insert AFTER INSERT ON failures
BEGIN
    INSERT INTO failure_words (rowid, words, tags)
        SELECT id, words, tags FROM failure_words_source WHERE id = NEW.id;
END;

-- Only when a searched or tagged column changes: a repeat (count, last
-- seen) does not touch the index.
CREATE TRIGGER failure_words_update
AFTER UPDATE OF subject, asserted_last_name, asserted_first_name, report_json,
    school_code, status, kind, asserted_verified ON failures
BEGIN
    DELETE FROM failure_words WHERE rowid = OLD.id;
    INSERT INTO failure_words (rowid, words, tags)
        SELECT id, words, tags FROM failure_words_source WHERE id = NEW.id;
END;

CREATE TRIGGER failure_words_delete AFTER DELETE ON failures
BEGIN
    DELETE FROM failure_words WHERE rowid = OLD.id;
END;
