-- Every change of a session's title counts here (issue 20, point 7): a title job that read
-- the session at one count stores its title only if the count is still the same, so that
-- a title made from turns an erasure has since emptied never lands on top of the
-- erasure's stand-in (nor on a rename made meanwhile).

ALTER TABLE sessions ADD COLUMN title_version INTEGER NOT NULL DEFAULT 0;
