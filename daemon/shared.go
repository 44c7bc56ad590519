package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"lookout/alerts"
	"lookout/config"
	"lookout/store"
	"lookout/store/pg"
)

// sharedStore is what the pipeline keeps in the store: the items (the
// batch writer), the alerts and their outbox (delivery, adoption of open
// alerts), the room profiles, the recent ids that preload dedupe, and
// retention. The SQLite store has it all; the PostgreSQL store (store/pg)
// too, so that several processors share one store.
type sharedStore interface {
	store.ItemStore
	alerts.DeliveryStore
	OpenAlerts(ctx context.Context) ([]store.AlertRow, error)
	RoomProfiles(ctx context.Context) ([]store.RoomProfile, error)
	PutRoomProfiles(ctx context.Context, rows []store.RoomProfile) error
	DeleteRoomProfilesBefore(ctx context.Context, t time.Time) (int64, error)
	RecentItemIDs(ctx context.Context, source string, n int) ([]string, error)
	Ping(ctx context.Context) error
	Prune(ctx context.Context, now time.Time, raw, items time.Duration) (int64, error)
	Close() error
}

var (
	_ sharedStore = (*store.Store)(nil)
	_ sharedStore = (*pg.Store)(nil)
)

// openPostgres opens the shared PostgreSQL store from the DSN in the
// environment variable store.dsn_env names. Logs and errors name the
// server's host only.
func openPostgres(ctx context.Context, cfg *config.Config, log *slog.Logger) (*pg.Store, error) {
	dsn, err := cfg.Store.PostgresDSN()
	if err != nil {
		return nil, err
	}
	ps, err := pg.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	log.Info("shared store on PostgreSQL", "server", ps.Name())
	return ps, nil
}
