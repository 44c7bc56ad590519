package daemon

import (
	"context"
	"time"

	"lookout/item"
	"lookout/store"
)

// What the alert engine learned about each room (store.RoomProfile) is
// loaded at start and saved while the daemon runs:
//
//   - every ProfileSaveEvery the engine's profiles join the collectors'
//     channel as one state item, behind every item the engine had counted
//     when they were taken, so the writer commits them with those items or
//     after them: after a kill -9 the stored profiles are a little old,
//     never ahead of the stored items; a room's anomaly detectors are
//     taken every tenth save (detectorSavesEvery), so after a kill -9
//     they are up to ten save intervals older than the rest (restored,
//     they count the time since as unseen);
//   - on a clean shutdown, once every stage has drained and the writer has
//     stored everything, they are written once more, directly.

// detectorSavesEvery: the periodic saves take a room's anomaly detectors
// (tens of KB each once learned) every this many saves.
const detectorSavesEvery = 10

// profileKeep is how long an unwritten profile row is kept: the engine
// writes the rows of every room it holds each time, and forgets a room
// silent for a week or more (see alerts), so an older row is dead.
const profileKeep = 9 * 24 * time.Hour

// loadProfiles hands the engine what the last run learned about each
// room. A row it cannot read is logged and skipped: that room learns
// again.
func (d *Daemon) loadProfiles(ctx context.Context, now time.Time) error {
	if _, err := d.shared.DeleteRoomProfilesBefore(ctx, now.Add(-profileKeep)); err != nil {
		return err
	}
	rows, err := d.shared.RoomProfiles(ctx)
	if err != nil {
		return err
	}
	n, err := d.engine.ImportProfiles(rows, now)
	if err != nil {
		d.log.Warn("some room profiles of the last run could not be read; those rooms learn their normal again", "err", err)
	}
	if len(rows) > 0 {
		d.log.Info("took over what the last run learned about its rooms", "profiles", n, "rows", len(rows))
	}
	return nil
}

// profileLoop sends the engine's profiles down raw every ProfileSaveEvery
// until ctx is done (Run closes raw only after it returns).
func (d *Daemon) profileLoop(ctx context.Context, raw chan<- item.Item) {
	t := time.NewTicker(d.opts.ProfileSaveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rows := d.engine.ExportProfiles()
		if len(rows) == 0 {
			continue
		}
		select {
		case raw <- store.RoomProfilesItem(rows):
		case <-ctx.Done():
			return
		}
	}
}

// saveProfilesDrained writes the engine's profiles directly at the end of
// Run. drained says every stage stopped cleanly (the writer stored every
// item the engine counted); otherwise the last periodic save stands.
func (d *Daemon) saveProfilesDrained(ctx context.Context, drained bool) {
	if !drained {
		d.log.Warn("room profiles not saved at shutdown: the pipeline did not drain cleanly; the last periodic save stands")
		return
	}
	if err := d.shared.PutRoomProfiles(ctx, d.engine.ExportAllProfiles()); err != nil {
		d.log.Warn("room profiles not saved at shutdown; the last periodic save stands", "err", err)
	}
}
