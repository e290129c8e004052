-- A change stamp can carry fractions of a second (DATETIME(3), TIMESTAMP(6)):
-- the cursor of a partly delivered window keeps them, so a restart resumes
-- after the last row sent, not at its whole second.
ALTER TABLE rowhook_progress MODIFY cursor_stamp datetime(6) NULL;
