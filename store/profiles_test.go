package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"lookout/item"
)

// storeProfiles lists room_profiles as rule/source/room=profile, sorted.
func storeProfiles(t *testing.T, s *Store) string {
	t.Helper()
	rows, err := s.RoomProfiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r.UpdatedAt.IsZero() {
			t.Errorf("row %s/%s/%s without updated_at", r.Rule, r.Source, r.Room)
		}
		out = append(out, r.Rule+"/"+r.Source+"/"+r.Room+"="+r.Profile)
	}
	return strings.Join(out, " ")
}

// Room profiles travel like a collector's state: committed in the batch
// of the items before them or not at all, a later row replacing an
// earlier one of the same rule and room, and never mixed up with a
// source's state.
func TestWriteItemsCommitsRoomProfilesWithItems(t *testing.T) {
	prof := func(kv ...string) item.Item {
		var rows []RoomProfile
		for i := 0; i+1 < len(kv); i += 2 {
			rows = append(rows, RoomProfile{Rule: "surge", Source: "brand-live", Room: kv[i], Profile: kv[i+1]})
		}
		return RoomProfilesItem(rows)
	}
	for _, tc := range []struct {
		name     string
		full     bool
		batch    []item.Item
		wantErr  bool
		wantRows int
		want     string
	}{
		{name: "items then profiles", batch: append(storeItemsN(0, 10), prof("r1", `{"a":1}`, "r2", `{"b":2}`)),
			wantRows: 10, want: `surge/brand-live/r1={"a":1} surge/brand-live/r2={"b":2}`},
		{name: "a later profile replaces an earlier one",
			batch:    append(append(storeItemsN(0, 3), prof("r1", "1")), append(storeItemsN(3, 5), prof("r1", "2"))...),
			wantRows: 5, want: "surge/brand-live/r1=2"},
		{name: "full disk: neither the items nor the profiles", full: true,
			batch:   append(storeBigItemsN(0, 20), prof("r1", "1")),
			wantErr: true, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := storeOpenTest(t)
			if tc.full {
				defer storeFillDisk(t, s)()
			}
			_, err := s.WriteItems(context.Background(), tc.batch)
			if (err != nil) != tc.wantErr {
				t.Fatalf("WriteItems: %v, want error %v", err, tc.wantErr)
			}
			if got := storeRows(t, s); got != tc.wantRows {
				t.Errorf("%d rows, want %d", got, tc.wantRows)
			}
			if got := storeProfiles(t, s); got != tc.want {
				t.Errorf("profiles %q, want %q", got, tc.want)
			}
			if got := storeStates(t, s, roomProfilesSource); got != "" {
				t.Errorf("profiles leaked into source_state: %q", got)
			}
		})
	}
}

func TestPutRoomProfilesAndPrune(t *testing.T) {
	s := storeOpenTest(t)
	ctx := context.Background()
	rows := []RoomProfile{{Rule: "a", Source: "s", Room: "1", Profile: "x"}, {Rule: "a", Source: "s", Room: "2", Profile: "y"}}
	if err := s.PutRoomProfiles(ctx, rows); err != nil {
		t.Fatal(err)
	}
	rows[0].Profile = "x2"
	if err := s.PutRoomProfiles(ctx, rows[:1]); err != nil {
		t.Fatal(err)
	}
	if got, want := storeProfiles(t, s), "a/s/1=x2 a/s/2=y"; got != want {
		t.Fatalf("profiles %q, want %q", got, want)
	}
	if _, err := s.DB().Exec(`UPDATE room_profiles SET updated_at = ? WHERE room = '2'`, FormatTime(time.Now().Add(-10*24*time.Hour))); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteRoomProfilesBefore(ctx, time.Now().Add(-8*24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1", n, err)
	}
	if got, want := storeProfiles(t, s), "a/s/1=x2"; got != want {
		t.Errorf("profiles after prune %q, want %q", got, want)
	}
}
