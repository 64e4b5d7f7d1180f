-- Car issues say who reported them and where they came from: a run sheet, or one lap of it (issue 22).
-- The source is kept as a pointer that outlives it: deleting the run sheet or lap leaves the issue, unlinked.
ALTER TABLE car_issues
    ADD COLUMN reported_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN run_sheet_id uuid REFERENCES run_sheets (id) ON DELETE SET NULL,
    ADD COLUMN lap_id       uuid REFERENCES laps (id) ON DELETE SET NULL;
CREATE INDEX car_issues_run_sheet_idx ON car_issues (run_sheet_id);
CREATE INDEX car_issues_lap_idx ON car_issues (lap_id);
